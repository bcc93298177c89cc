"""Workload families by name, and one call from (family, preset, params, seed) to a Trace.

Each family is a package ``workloads.<name>`` exposing ``presets()``, ``load_spec(preset,
params)``, ``generate(spec, rng, *, seed, preset)`` and ``describe()``; a family's package is
imported only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from hwsim.errors import ConfigError, did_you_mean
from hwsim.trace import Trace


@dataclass(frozen=True)
class Family:
    """A workload family: its name and the package that implements it."""

    name: str
    module: str

    def load(self) -> ModuleType:
        """The family's package (imported on first use)."""
        return importlib.import_module(self.module)

    @property
    def summary(self) -> str:
        """One line saying what the family models."""
        return self.load().SUMMARY

    @property
    def work_unit(self) -> str:
        """Unit of useful work of the family's traces ("frame" or "token")."""
        return self.load().WORK_UNIT

    def presets(self) -> list[str]:
        """Preset names of the family."""
        return self.load().presets()

    def load_spec(self, preset: str, params: Mapping[str, Any] | None = None) -> Any:
        """The family's spec for ``preset`` with ``params`` overrides; raises ConfigError."""
        return self.load().load_spec(preset, params or {})

    def generate(self, spec: Any, rng: np.random.Generator, *, seed: int | None = None,
                 preset: str = "") -> Trace:
        """The trace of ``spec``; randomness only from ``rng``."""
        return self.load().generate(spec, rng, seed=seed, preset=preset)

    def describe(self) -> dict[str, Any]:
        """Summary, unit of work, and every preset's parameters with values and sources."""
        return {"family": self.name, "summary": self.summary, "work_unit": self.work_unit,
                "presets": self.load().describe()}


FAMILIES: dict[str, Family] = {
    name: Family(name, f"workloads.{name}") for name in ("worldkv", "deltanet2", "hrm", "transformer")
}


def get_family(name: str) -> Family:
    """The family called ``name``; raises ConfigError with the closest known name."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown workload family {name!r}{did_you_mean(name, tuple(FAMILIES))}")
    return FAMILIES[name]


def check_params(family: str, preset: str, params: Mapping[str, Any] | None = None) -> None:
    """Validate ``params`` for ``family``/``preset`` (the parallelism keys included) without
    generating; raises ConfigError."""
    from workloads.common.parallel import Parallelism

    fam = get_family(family)
    params = {**_preset_parallel(fam, preset), **dict(params or {})}
    Parallelism.from_params(params, family)
    fam.load_spec(preset, params)


def _preset_parallel(fam: Family, preset: str) -> dict[str, Any]:
    """The ``parallel`` block of a preset (the run it reproduces), if the family has one."""
    library = getattr(fam.load(), "LIBRARY", None)
    if library is None or preset not in library.presets():
        return {}
    return dict(library.preset(preset).parallel)


def generate_trace(family: str, preset: str, params: Mapping[str, Any] | None = None,
                   seed: int = 0) -> Trace:
    """Generate the trace of ``family``/``preset`` with ``params`` overrides for ``seed``.

    Equal arguments give identical traces. ``dp``, ``fsdp``, ``tp``, ``sp`` and ``sp_mode``
    in ``params`` parallelize the trace (:mod:`workloads.common.parallel`). Raises
    ConfigError naming a bad family, preset or parameter.
    """
    from workloads.common.parallel import Parallelism, parallelize

    fam = get_family(family)
    params = {**_preset_parallel(fam, preset), **dict(params or {})}
    plan = Parallelism.from_params(params, family)   # dp, fsdp, tp, sp, sp_mode: any family
    spec = fam.load_spec(preset, params)
    trace = fam.generate(spec, np.random.default_rng(seed), seed=seed, preset=preset)
    return parallelize(trace, plan)
