"""Reading a YAML file whose top level must be a mapping, with errors that name file and line.

The reader goes through :mod:`hwsim.inputs` (regular files, a size cap, UTF-8), refuses
duplicate keys (YAML would silently keep the last), bounds what aliases may expand to (a
kilobyte of nested aliases can otherwise stand for gigabytes), and records the line of
every key path so that later validation can say ``file:line: key.path: message``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwsim.config.issues import Issues, Marks
from hwsim.errors import ConfigError
from hwsim.inputs import YAML_MAX_BYTES, read_text

#: libyaml's parser when PyYAML was built with it (same results, ~8x faster: a sweep reads
#: its machine file once per point), else the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Most nodes a document may have once its aliases are expanded.
MAX_EXPANDED_NODES = 100_000
#: Deepest nesting of mappings and lists a document may have.
MAX_DEPTH = 64


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML mapping and the line of each of its key paths."""

    data: dict[str, Any]
    marks: Marks
    source: str


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Parse ``path``; ``what`` ("machine file", "sweep file", ...) names it in errors.

    Raises ConfigError for an unreadable file, invalid YAML (with its line), duplicate
    keys, aliases that expand too far or a top level that is not a mapping.
    """
    return load_yaml(path, what).data


def load_yaml(path: str | Path, what: str) -> YamlDocument:
    """Like :func:`read_yaml_mapping`, with the line of every key path."""
    path = Path(path)
    source = str(path)
    text = read_text(path, what, YAML_MAX_BYTES, ConfigError)
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{source}: the {what} nests brackets {depth} deep (at most {MAX_DEPTH})")
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{source}: the {what} is empty")
        issues = Issues(source)
        marks = Marks({"": (source, node.start_mark.line + 1)})
        _walk(node, "", source, marks, issues, depth=0, budget=[MAX_EXPANDED_NODES])
        issues.raise_if_any()
        data = loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: invalid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{source}: the {what} nests too deep to read") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a {what} must be a mapping at the top level, "
                          f"got {type(data).__name__}")
    return YamlDocument(data, marks, source)


def _nesting_depth(text: str) -> int:
    """The deepest flow-bracket nesting in ``text`` (a cheap bound checked before parsing)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _walk(node: yaml.Node, path: str, source: str, marks: Marks, issues: Issues, depth: int,
          budget: list[int]) -> None:
    """Record key lines, report duplicate keys, and charge every expanded node to ``budget``."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{source}: the document expands to more than {MAX_EXPANDED_NODES:,} "
                          "nodes (aliases nested too far)")
    if depth > MAX_DEPTH:
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: {path or 'document'}: nested more than "
                          f"{MAX_DEPTH} levels deep")
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, path, source, marks, issues, depth + 1, budget)
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.problems.append(f"{source}:{line}: {child}: duplicate key (first written on line "
                                       f"{seen[key]}); YAML would keep only the last")
            else:
                seen[key] = line
                marks.entries.setdefault(child, (source, line))
            _walk(value_node, child, source, marks, issues, depth + 1, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            marks.entries.setdefault(child, (source, item.start_mark.line + 1))
            _walk(item, child, source, marks, issues, depth + 1, budget)
