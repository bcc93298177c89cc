"""Reading a YAML file whose top level must be a mapping, with errors that name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import ConfigError


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Parse ``path``; ``what`` ("machine file", "sweep file", ...) names it in errors.

    Raises ConfigError for a missing file, invalid YAML (with its line) or a top level that
    is not a mapping.
    """
    if not path.exists():
        raise ConfigError(f"{path}: no such {what}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping at the top level")
    return data
