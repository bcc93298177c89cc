"""The files hwsim ships: machines, example traces and example sweeps, found by name.

In a clone (or an editable install) they are the repository's own folders; an installed
wheel carries copies of the same folders inside the package, under ``hwsim/_shipped/``,
laid out as in the repository so the relative paths between them (a sweep's
``machine: ../../arch_configs/h200.yaml``) keep working::

    arch_configs/*.yaml        machines        -> machine_path("h200")
    traces/examples/*.csv      example traces  -> shipped_root() / "traces/examples/gemm.csv"
    examples/sweeps/*.yaml     example sweeps
    calibration/*.csv          published measurements (hwsim calibrate)

:func:`resolve_machine` is what lets ``--arch h200`` and ``extends: h100-sxm`` name a shipped
machine as well as a file. Paths are resolved from this module's location, never from the
working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwsim.errors import ConfigError, did_you_mean

#: Folders shipped with the package, relative to the repository root (and to ``_shipped/``).
SHIPPED_FOLDERS = ("arch_configs", "traces", "examples/sweeps", "calibration")
MACHINES = "arch_configs"
#: The in-package copy a wheel carries (written by the build, see ``setup.py``).
PACKAGE_COPY = Path(__file__).resolve().parents[1] / "_shipped"
#: The repository root when hwsim runs from a clone (``hwsim/`` sits in it).
REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ShippedMachine:
    """A machine file that ships with hwsim: its name (the file stem), path and description."""

    name: str
    path: Path
    description: str


@cache
def shipped_root() -> Path:
    """The folder holding ``arch_configs/``, ``traces/`` and ``examples/``: the in-package
    copy of an installed wheel, else the repository. Raises ConfigError if neither exists."""
    for root in (PACKAGE_COPY, REPOSITORY):
        if (root / MACHINES).is_dir():
            return root
    raise ConfigError(f"hwsim's shipped machines are missing (looked in {PACKAGE_COPY} and "
                      f"{REPOSITORY / MACHINES}); reinstall hwsim")


def machines() -> list[ShippedMachine]:
    """Every shipped machine, sorted by name, with the ``description:`` line of its file."""
    return [ShippedMachine(path.stem, path, _description(path))
            for path in sorted((shipped_root() / MACHINES).glob("*.yaml"), key=lambda p: p.stem)]


def machine_names() -> list[str]:
    """The names ``--arch`` and ``extends:`` accept besides paths."""
    return [m.name for m in machines()]


def machine_path(name: str) -> Path:
    """The file of shipped machine ``name`` (``"h200"`` or ``"h200.yaml"``); raises
    ConfigError listing the shipped names when there is none."""
    stem = name.removesuffix(".yaml").removesuffix(".yml")
    path = shipped_root() / MACHINES / f"{stem}.yaml"
    if "/" in stem or os.sep in stem or not path.is_file():
        names = machine_names()
        raise ConfigError(f"{name}: no such machine file, and no shipped machine of that name"
                          f"{did_you_mean(stem, names)} (shipped: {', '.join(names)}; "
                          f"see 'hwsim machines')")
    return path


def resolve_machine(path: str | os.PathLike, base: Path | None = None) -> Path:
    """A machine file for ``path``: the file itself when it exists (relative to ``base`` when
    given), else the shipped machine of that name. Raises ConfigError naming both misses."""
    candidate = (base / path) if base is not None else Path(path)
    if candidate.exists():
        return candidate
    if is_bare_name(path):
        try:
            return machine_path(str(path))
        except ConfigError:
            pass
    where = f" (looked in {base} and the shipped machines)" if base is not None else ""
    names = machine_names()
    stem = Path(path).stem
    raise ConfigError(f"{candidate}: no such machine file{where}{did_you_mean(stem, names)}; "
                      f"shipped machines: {', '.join(names)}")


def is_bare_name(path: str | os.PathLike) -> bool:
    """True for a name without a folder (``h200``, ``h200.yaml``): one a shipped machine may have."""
    text = os.fspath(path)
    return bool(text) and "/" not in text and os.sep not in text


def _description(path: Path) -> str:
    """The ``description:`` of a machine file, read without validating the whole file."""
    from hwsim.config.yaml_file import read_yaml_mapping

    try:
        return " ".join(str(read_yaml_mapping(path, "machine file").get("description", "")).split())
    except ConfigError:
        return ""
