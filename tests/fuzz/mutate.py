"""Hypothesis strategies that mutate the files a user writes: YAML trees, CSV cells, bytes.

A mutation deletes or renames a key, swaps a value's type, writes an extreme number, a wrong
unit, a broken reference or a hostile string, or damages the text (a line repeated or cut,
the file truncated, bytes that are not UTF-8).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import strategies as st

#: Values that have broken parsers before: wrong types, extremes, units of the wrong
#: dimension, references to nothing, expression and format-string payloads.
HOSTILE: tuple[Any, ...] = (
    None, True, False, "", "nowhere", "hbm", -1, 0, 1, 3, 12, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -2**63,
    1.5, -0.5, 1e308, -1e308, 1e-300, 5e-324, float("nan"), float("inf"), float("-inf"),
    "1e400", "-1e400", ".nan", "nan GB/s", "inf TB/s", "1e-300 B/s", "1e300 Hz", "64 GHz", "12 XB", "3 pJ",
    "-3 pJ/bit", "1.5 W", "0 B/s", "-8 GiB", "1 TFLOP/s", "abc", "1..2 GB", "GB", "1e", [], {}, [1, 2],
    ["hbm", "hbm"], {"a": 1}, {"ref": "nothing"}, {"ref": "horowitz_fp16_flop", "node": "-5 nm"},
    "'a' * 1000 * 1000 * 1000", "__import__('os').system('true')", "'%s' % 1", "{machine}}x}", "}",
    "${HOME}", "x" * 300, "\t", "a\nb", "../../../../etc/passwd", "/dev/zero", "ü", "0x10", "1_000",
)


def key_paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (dict keys and list indices) into ``tree``."""
    out = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.append((*prefix, key))
            out.extend(key_paths(value, (*prefix, key)))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out.append((*prefix, index))
            out.extend(key_paths(value, (*prefix, index)))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    node = tree
    for part in path[:-1]:
        node = node[part]
    return node


def _typo(name: str, position: int) -> str:
    if not name:
        return "x"
    position %= len(name)
    return name[:position] + name[position + 1:] if len(name) > 1 else name + name


@st.composite
def mutated_tree(draw, tree: Any, max_mutations: int = 3) -> Any:
    """``tree`` with one to ``max_mutations`` mutations."""
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = key_paths(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(tree, path), path[-1]
        action = draw(st.sampled_from(("delete", "rename", "replace", "replace", "replace", "unit", "nest")))
        if action == "delete":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            value = parent.pop(last)
            parent[_typo(str(last), draw(st.integers(0, 40)))] = value
        elif action == "unit" and isinstance(parent[last], str) and " " in parent[last]:
            number, _, _ = parent[last].partition(" ")
            parent[last] = f"{number} {draw(st.sampled_from(('GHz', 'TB/s', 'pJ', 'pJ/bit', 'W', 'ns', 'MiB', 'B', 'FLOP/s', 'xyz')))}"
        elif action == "nest":
            parent[last] = {"x": parent[last]} if draw(st.booleans()) else [parent[last]]
        else:
            parent[last] = draw(st.one_of(st.sampled_from(HOSTILE), st.integers(), st.floats(),
                                          st.text(max_size=12)))
    return tree


@st.composite
def damaged_text(draw, text: str) -> bytes:
    """``text`` with its bytes damaged: a line repeated or removed, cut short, bytes inserted."""
    data = text.encode()
    lines = data.splitlines(keepends=True)
    action = draw(st.sampled_from(("repeat", "remove", "truncate", "insert", "empty", "swap")))
    if action == "repeat" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        return b"".join(lines)
    if action == "remove" and lines:
        del lines[draw(st.integers(0, len(lines) - 1))]
        return b"".join(lines)
    if action == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if action == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from((b"\xff\xfe", b"\x00", b"\t", b":", b"- ", b"&a ", b"*a", b"{", b"\r")))\
            + data[at:]
    if action == "swap" and len(lines) > 1:
        i = draw(st.integers(0, len(lines) - 2))
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
        return b"".join(lines)
    return b""


@st.composite
def mutated_yaml(draw, tree: Any) -> bytes:
    """A YAML file from ``tree``: most often a mutated tree, sometimes damaged text."""
    if draw(st.integers(0, 3)) == 0:
        return draw(damaged_text(yaml.safe_dump(tree, sort_keys=False)))
    return yaml.safe_dump(draw(mutated_tree(tree)), sort_keys=False, allow_unicode=True).encode()


@st.composite
def mutated_csv(draw, text: str) -> bytes:
    """A CSV trace from ``text`` with cells, columns or bytes mutated."""
    if draw(st.integers(0, 3)) == 0:
        return draw(damaged_text(text))
    lines = text.splitlines()
    meta = [line for line in lines if line.startswith("#")]
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(("cell", "cell", "cell", "header", "drop-column", "row", "meta")))
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, len(rows[0]) - 1))
        if action == "cell" and c < len(rows[r]):
            value = draw(st.one_of(st.sampled_from(HOSTILE), st.integers(), st.floats(), st.text(max_size=8)))
            rows[r][c] = str(value).replace(",", ";").replace("\n", " ")
        elif action == "header":
            rows[0][c] = _typo(rows[0][c], draw(st.integers(0, 20)))
        elif action == "drop-column":
            rows = [row[:c] + row[c + 1:] for row in rows]
        elif action == "row" and len(rows) > 1:
            rows.insert(r, list(rows[max(r, 1)]))
        elif action == "meta":
            meta = [draw(st.sampled_from(('# hwsim-trace {"work_units": -1}', '# hwsim-trace {"work_unit": null}',
                                          '# hwsim-trace {"seed": 1e400}', '# hwsim-trace {"schema_version": 2}',
                                          '# hwsim-trace {"params": {"a": NaN}}', '# hwsim-trace "text"',
                                          '# hwsim-trace {"work_units": 1e308}', '# hwsim-trace {',
                                          '# hwsim-trace {"extra": 1}', '# hwsim-trace {"work_units": "2"}')))]
        if not rows or not rows[0]:
            break
    return ("\n".join([*meta, *(",".join(row) for row in rows)]) + "\n").encode()
