"""Reading a YAML file whose top level must be a mapping, with errors that name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import ConfigError

#: libyaml's parser when PyYAML was built with it (same results, ~8x faster: a sweep reads
#: its machine file once per point), else the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Parse ``path``; ``what`` ("machine file", "sweep file", ...) names it in errors.

    Raises ConfigError for a missing file, invalid YAML (with its line) or a top level that
    is not a mapping.
    """
    if not path.exists():
        raise ConfigError(f"{path}: no such {what}")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping at the top level")
    return data
