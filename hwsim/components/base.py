"""The component contract and the registry from YAML ``kind`` to implementation.

Two families of components exist:

* compute units (:class:`ComputeUnit`) execute ops: given a batch of trace rows they return
  each op's busy time in cycles of the machine's reference clock and its compute energy;
* memory resources (:class:`MemoryResource`: tiers and links) carry bytes: each has a
  bandwidth, a latency and an energy per bit, and concurrent transfers queue on it.

Each implementation module registers its classes with :func:`register`, beside the class.
Every component states its hardware facts in one record (:meth:`Component.facts`, see
:mod:`hwsim.components.facts`); reports read that record, never the config's keys.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from hwsim.components.facts import Bandwidth, ComponentFacts, EnergyConstant
from hwsim.config.fields import field_unit
from hwsim.errors import ConfigError, RangeOverflowError, did_you_mean
from hwsim.memo import ByIdentity
from hwsim.trace.columns import OpColumns

#: Config dimensions whose fields are energy constants (listed with their provenance).
ENERGY_DIMENSIONS = ("energy", "energy_bit", "power")

REGISTRY: dict[str, type[Component]] = {}


class OpError(Exception):
    """A cost model cannot time one op: ``row`` (position in the rows it was given) and the
    trace ``column`` at fault. The engine turns it into a TraceError naming the file and row."""

    def __init__(self, row: int, column: str, message: str) -> None:
        super().__init__(message)
        self.row, self.column, self.message = row, column, message


def register(kind: str):
    """Class decorator: make ``cls`` the implementation of YAML ``kind``."""

    def wrap(cls: type[Component]) -> type[Component]:
        if kind in REGISTRY:
            raise ValueError(f"component kind {kind!r} registered twice")
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return wrap


def component_class(kind: str, where: str) -> type[Component]:
    """Look up ``kind``; an unknown kind lists the known ones."""
    _load_builtin_components()
    if kind not in REGISTRY:
        raise ConfigError(f"{where}: unknown component kind {kind!r}{did_you_mean(kind, tuple(REGISTRY))}")
    return REGISTRY[kind]


#: Built components by config object (then class, name and reference clock). A component
#: never changes once built (the tables some fill lazily follow from the config alone), so
#: the machines of a sweep's points share those whose config their values do not change.
_BUILT = ByIdentity(1024)


def built_component(cls: type[Component], name: str, config: Any, ref_clock_hz: float) -> Component:
    """``cls(name, config, ref_clock_hz)``, built once per config object."""
    made = _BUILT.get(config, lambda _: {})
    key = (cls, name, ref_clock_hz)
    found = made.get(key)
    if found is None:
        found = made[key] = cls(name, config, ref_clock_hz)
    return found


_BUILTINS_LOADED = False


def _load_builtin_components() -> None:
    # Imported here, not at module top, so that the registry fills when first needed and
    # importing hwsim.components.base alone has no side effects. (Once: a machine's load
    # looks up every component kind, and an import statement costs even when done.)
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    from hwsim.components import (  # noqa: F401
        cam,
        dma,
        fabric,
        host,
        link,
        matrix_engine,
        memory,
        similarity,
        sram,
        systolic,
        vector,
    )
    _BUILTINS_LOADED = True


class Component:
    """A named hardware block built from its frozen config dataclass."""

    kind: ClassVar[str] = ""
    #: How the engine and reports treat the component (see :data:`hwsim.components.facts.ROLES`).
    role: ClassVar[str] = "host"
    Config: ClassVar[type]

    def __init__(self, name: str, config: Any, ref_clock_hz: float) -> None:
        self.name = name
        self.config = config
        self.ref_clock_hz = ref_clock_hz

    @property
    def clock_hz(self) -> float:
        """The component's own clock, Hz (its ``clock``; the machine clock when it has none)."""
        clock = getattr(self.config, "clock", 0.0)
        return clock or self.ref_clock_hz

    def facts(self) -> ComponentFacts:
        """The component's one record of hardware facts (kinds with more override this)."""
        return ComponentFacts(name=self.name, kind=self.kind, role=self.role, clock_hz=self.clock_hz,
                              energy=self.energy_constants())

    def energy_constants(self) -> tuple[EnergyConstant, ...]:
        """Every energy and power field of the config, in its field's unit, with the field's
        own provenance note or else the component's source."""
        notes = getattr(self.config, "provenance", {}) or {}
        fallback = getattr(self.config, "source", "") or "(no source given)"
        return tuple(EnergyConstant(f.name, float(getattr(self.config, f.name)), field_unit(f),
                                    str(notes.get(f.name) or fallback))
                     for f in dataclasses.fields(self.config) if f.metadata.get("unit") in ENERGY_DIMENSIONS)


class ComputeUnit(Component):
    """A component that executes ops (systolic array, matrix engine, vector unit, ...)."""

    role = "compute"

    #: op kinds this unit can execute, with a preference: a machine dispatches each kind to
    #: the unit that prefers it most (ties: YAML order). 3 = a unit built for the kind,
    #: 2 = the natural home, 1 = can do it, 0 = emulation of last resort.
    handles: ClassVar[dict[str, int]] = {}
    #: True for units (DMA engines) whose ops move bytes from ``src`` to ``dst`` along the
    #: full route, through a bandwidth queue of the unit's own.
    moves_data: ClassVar[bool] = False

    @property
    def instances(self) -> int:
        """How many ops the unit can run at once (independent arrays, engines)."""
        return int(getattr(self.config, "count", 1))

    def facts(self) -> ComponentFacts:
        return dataclasses.replace(super().facts(), instances=self.instances)

    @property
    def home(self) -> str:
        """The memory tier this unit reads and writes through."""
        return self.config.memory

    def cycles(self, ops: OpColumns) -> np.ndarray:
        """Busy cycles of each op in this unit's own clock (int64)."""
        raise NotImplementedError

    def ref_cycles(self, ops: OpColumns) -> np.ndarray:
        """Compute cycles of each op in the machine's reference clock (rounded up)."""
        own = self.cycles(ops)
        if self.clock_hz == self.ref_clock_hz:
            return own
        return ceil_cycles(own * (self.ref_clock_hz / self.clock_hz), ops)

    @property
    def fixed_cycles(self) -> int:
        """Fixed cost of every op on this unit, in reference cycles (``op_overhead``).

        A kernel pays it whether it is compute- or memory-bound (launch, ramp-up and tail on
        a GPU): the op's compute and its memory traffic both start after it.
        """
        return seconds_to_cycles(getattr(self.config, "op_overhead", 0.0), self.ref_clock_hz)

    def energy_pj(self, ops: OpColumns) -> np.ndarray:
        """Dynamic compute energy of each op in picojoules (FLOPs x energy per FLOP)."""
        return np.asarray(ops["flops"], dtype=np.float64) * self.config.energy_per_flop


class MemoryResource(Component):
    """A tier or link: bytes queue on it at its bandwidth, after its latency."""

    role = "tier"
    #: Trace columns :meth:`busy_cycles` reads from its ``ops`` (the op id and kind name an
    #: op in errors); a pattern-sensitive resource lists the columns its model needs.
    op_columns: tuple[str, ...] = ("op_id", "kind")

    def facts(self) -> ComponentFacts:
        """A tier's record: its capacity and its read and write bandwidth, which share one
        queue (named after the tier)."""
        peak = self.peak_bytes_per_s
        return dataclasses.replace(
            super().facts(), capacity_bytes=float(getattr(self.config, "capacity", 0.0)),
            bandwidth=tuple(Bandwidth(direction, self.name, peak, self.sustained_bytes_per_s(direction))
                            for direction in ("read", "write")))

    @property
    def peak_bytes_per_s(self) -> float:
        """Datasheet bandwidth (per direction for a link), bytes/s, before any efficiency."""
        return float(self.config.bandwidth)

    def sustained_bytes_per_s(self, role: str = "read", to: str | None = None) -> float:
        """Bytes per second the timing model moves for traffic of ``role`` towards ``to``."""
        return self.bytes_per_cycle_to(to) * self.ref_clock_hz

    @property
    def bytes_per_cycle(self) -> float:
        """Sustained bandwidth in bytes per reference-clock cycle: the datasheet ``bandwidth``
        times the achievable ``efficiency`` (1 when the config has none)."""
        return self.config.bandwidth * getattr(self.config, "efficiency", 1.0) / self.ref_clock_hz

    def bytes_per_cycle_to(self, to: str | None) -> float:
        """Sustained bytes per reference cycle for traffic whose next tier is ``to``
        (directional resources such as links override this)."""
        return self.bytes_per_cycle

    @property
    def latency_cycles(self) -> int:
        return seconds_to_cycles(self.config.latency, self.ref_clock_hz)

    def busy_cycles(self, nbytes: np.ndarray, ops: OpColumns | None = None,
                    role: str = "read", to: str | None = None) -> np.ndarray:
        """Cycles this resource is occupied moving ``nbytes`` (int64, rounded up).

        ``ops`` (the rows the bytes belong to) and ``role`` ("read", "write" or "transit")
        let pattern-sensitive resources such as banked SRAM charge bank conflicts; ``to``
        names the tier a link direction leads to. Row by row: a row's cycles depend on its
        own bytes and op only (the cost pass costs the rows of many op groups in one call),
        as do :meth:`channel_energy_pj`'s pJ.
        """
        return ceil_cycles(nbytes / self.bytes_per_cycle_to(to), ops)

    def channel_energy_pj(self, nbytes: np.ndarray, role: str = "read") -> np.ndarray:
        """Energy of moving ``nbytes`` through this resource in ``role``, in picojoules."""
        return nbytes * 8.0 * self.config.energy_per_bit


#: Tolerance when rounding a time up to whole cycles: 7 ns x 1 GHz is 7.000000000000001
#: in binary floating point and must count as 7 cycles, not 8.
CYCLE_EPSILON = 1e-6


#: Most cycles one time may last: sums of cycle counts in int64 must not wrap.
MAX_CYCLES = 2.0**62


def seconds_to_cycles(seconds: float, clock_hz: float) -> int:
    """Whole cycles (rounded up) that ``seconds`` last at ``clock_hz``; RangeOverflowError
    when that is more than :data:`MAX_CYCLES`."""
    if not seconds > 0:
        return 0
    cycles = math.ceil(seconds * clock_hz - CYCLE_EPSILON)
    if not cycles < MAX_CYCLES:
        raise RangeOverflowError(f"a time of {seconds:.4g} s at {clock_hz:.4g} Hz is {cycles:.4g} cycles, "
                                 "more than int64 cycle counts can hold")
    return int(cycles)


def text_equals(ops, column: str, value: str) -> np.ndarray:
    """``ops[column] == value`` (bool array): by code on trace columns (comparing the strings
    of an object array took most of a cost model's time), by value on any other mapping."""
    if isinstance(ops, OpColumns):
        return ops.equals(column, value)
    return np.asarray(ops[column], dtype=object) == value


def text_factorize(ops, column: str) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize(ops[column])`` as (int64 index per row, distinct values in order of
    first appearance), from the codes on trace columns."""
    if isinstance(ops, OpColumns):
        return ops.factorize(column)
    import pandas as pd

    local, uniques = pd.factorize(np.asarray(ops[column], dtype=object))
    return local, list(uniques)


def ceil_cycles(cycles: np.ndarray, ops: OpColumns | None = None) -> np.ndarray:
    """Round fractional cycle counts up to int64, ignoring floating-point dust.

    Raises RangeOverflowError, naming the first such op of ``ops`` when given, for a time
    that is not finite or longer than :data:`MAX_CYCLES` (a rate in the machine too small
    for the op's size), instead of letting it wrap.
    """
    values = np.ceil(np.asarray(cycles, dtype=np.float64) - CYCLE_EPSILON)
    bad = ~(values < MAX_CYCLES)   # NaN and inf too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a time"
        if ops is not None and "op_id" in ops and i < len(ops):
            what = f"op {int(np.asarray(ops['op_id'])[i])} ({np.asarray(ops['kind'])[i]})"
        raise RangeOverflowError(f"{what} takes {float(values.flat[i]):.4g} cycles, more than int64 cycle "
                                 "counts can hold: a bandwidth, clock or peak of the machine is too small "
                                 "for the op's size")
    return values.clip(min=0).astype(np.int64)


def ceil_div(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Integer ceiling division that works on int64 arrays."""
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))
