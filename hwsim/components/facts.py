"""One record of a component's hardware facts, read by every report instead of its config.

Each component class states its own facts (:meth:`hwsim.components.base.Component.facts`):
its role, how many ops it runs at once, its peak FLOP/s per dtype, its bandwidth per
direction, its capacity and on-chip bytes, its clock and every energy constant with its
unit and source. The engine writes the records of a machine into the resolved machine
(the ``facts`` section of a run folder's ``machine.resolved.yaml``), so the summary, the
roofline, the energy provenance table and the sweep table of a finished run read them
without rebuilding components, and all read the same numbers.

Units: FLOP/s, bytes/s, bytes, Hz; an energy constant carries its own unit (``pJ/FLOP``,
``pJ/bit``, ``pJ/access``, ``W``), taken from its config field (:func:`hwsim.config.fields.
field_unit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwsim.errors import ResultError

if TYPE_CHECKING:
    from hwsim.config.machine import MachineConfig

#: How the engine and the reports treat a component: it runs ops, holds bytes, joins two
#: tiers, or launches kernels.
ROLES = ("compute", "tier", "link", "host")
#: The peak of a unit whose rate does not depend on the op's dtype.
ANY_DTYPE = "any"
#: The section of a resolved machine that holds the records, by component name.
FACTS_KEY = "facts"


@dataclass(frozen=True)
class Peak:
    """Dense datasheet peak of the whole component (every instance) for one dtype, FLOP/s,
    before any efficiency factor."""

    dtype: str
    flops_per_s: float


@dataclass(frozen=True)
class Bandwidth:
    """One direction bytes take through a memory resource.

    ``direction`` is ``read`` or ``write`` for a tier, ``<a>-><b>`` for a link and ``move``
    for a DMA group; ``channel`` is the engine queue the bytes wait in (directions that name
    one channel share it). ``peak_bytes_per_s`` is the datasheet figure and
    ``sustained_bytes_per_s`` what the timing model moves (peak x efficiency).
    """

    direction: str
    channel: str
    peak_bytes_per_s: float
    sustained_bytes_per_s: float


@dataclass(frozen=True)
class EnergyConstant:
    """An energy or power constant: its config key, value in ``unit`` and where it comes from."""

    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class ComponentFacts:
    """What a component is, in numbers reports can read (see the module docstring).

    ``instances`` is how many ops it runs at once (the engine's timelines for it: a
    utilisation is busy cycles over ``instances x run cycles``); ``clock_hz`` its own clock
    (the machine clock when it has none); ``capacity_bytes`` what a tier holds (0 for other
    roles); ``on_chip_bytes`` the on-chip storage it costs a design (SRAM capacity, CAM keys).
    """

    name: str
    kind: str
    role: str
    instances: int = 1
    clock_hz: float = 0.0
    peaks: tuple[Peak, ...] = ()
    bandwidth: tuple[Bandwidth, ...] = ()
    capacity_bytes: float = 0.0
    on_chip_bytes: int = 0
    energy: tuple[EnergyConstant, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"{self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")

    @property
    def peak_flops(self) -> dict[str, float]:
        """dtype -> peak FLOP/s."""
        return {p.dtype: p.flops_per_s for p in self.peaks}

    def constant(self, name: str) -> float:
        """The value of energy constant ``name`` (0 when the component has none)."""
        return next((c.value for c in self.energy if c.name == name), 0.0)

    @property
    def leakage_w(self) -> float:
        """Static power, W, charged for the whole run."""
        return self.constant("leakage_power")

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts and lists, for the resolved machine's ``facts`` section."""
        return {
            "kind": self.kind, "role": self.role, "instances": self.instances, "clock_hz": self.clock_hz,
            "peak_flops_per_s": self.peak_flops,
            "bandwidth": [{"direction": b.direction, "channel": b.channel,
                           "peak_bytes_per_s": b.peak_bytes_per_s,
                           "sustained_bytes_per_s": b.sustained_bytes_per_s} for b in self.bandwidth],
            "capacity_bytes": self.capacity_bytes, "on_chip_bytes": self.on_chip_bytes,
            "energy": [{"name": c.name, "value": c.value, "unit": c.unit, "source": c.source}
                       for c in self.energy],
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> ComponentFacts:
        """The record :meth:`to_dict` wrote; KeyError, TypeError or ValueError when it is not one."""
        return cls(
            name=name, kind=str(data["kind"]), role=str(data["role"]), instances=int(data["instances"]),
            clock_hz=float(data["clock_hz"]),
            peaks=tuple(Peak(str(d), float(v)) for d, v in data["peak_flops_per_s"].items()),
            bandwidth=tuple(Bandwidth(str(b["direction"]), str(b["channel"]), float(b["peak_bytes_per_s"]),
                                      float(b["sustained_bytes_per_s"])) for b in data["bandwidth"]),
            capacity_bytes=float(data["capacity_bytes"]), on_chip_bytes=int(data["on_chip_bytes"]),
            energy=tuple(EnergyConstant(str(c["name"]), float(c["value"]), str(c["unit"]), str(c["source"]))
                         for c in data["energy"]))


#: Records (and their plain form) by (kind, name, reference clock, config identity), each
#: entry holding its config so that the identity stays its own: the points of a sweep share
#: the configs of the components their values do not change, and build those records once.
_CACHE: dict[tuple[str, str, float, int], tuple[Any, ComponentFacts, dict[str, Any]]] = {}
_CACHE_SIZE = 1024


def _cached(spec: Any, clock_hz: float) -> tuple[Any, ComponentFacts, dict[str, Any]]:
    key = (spec.kind, spec.name, clock_hz, id(spec.config))
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not spec.config:
        from hwsim.components.base import built_component, component_class

        record = built_component(component_class(spec.kind, spec.name), spec.name, spec.config, clock_hz).facts()
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
            _BY_PLAIN.clear()
        hit = _CACHE[key] = (spec.config, record, record.to_dict())
        _BY_PLAIN[id(hit[2])] = (hit[2], record)
    return hit


#: The records of the plain dicts above, by the dict's identity: a run's summary reads the
#: facts back from its resolved machine, whose section holds those very dicts.
_BY_PLAIN: dict[int, tuple[dict[str, Any], ComponentFacts]] = {}


def machine_facts(config: MachineConfig) -> dict[str, ComponentFacts]:
    """Every component's record, in YAML order, from a machine config (builds the components)."""
    return {spec.name: _cached(spec, config.clock_hz)[1] for spec in config.components}


def facts_section(config: MachineConfig) -> dict[str, dict[str, Any]]:
    """The ``facts`` section of a resolved machine: :func:`machine_facts` as plain dicts
    (shared between machines with the same component config: treat as read-only)."""
    return {spec.name: _cached(spec, config.clock_hz)[2] for spec in config.components}


def read_facts(machine: dict[str, Any]) -> dict[str, ComponentFacts]:
    """The records of a resolved machine dict (a run's ``machine``), by component name.

    Raises ResultError when the machine has no ``facts`` section (a run folder written
    before the section existed) or a record is damaged.
    """
    section = machine.get(FACTS_KEY)
    where = machine.get("source") or machine.get("name") or "resolved machine"
    if not isinstance(section, dict):
        raise ResultError(f"{where}: the resolved machine has no '{FACTS_KEY}' section (written by an "
                          "older hwsim); run it again")
    out = {}
    for name, data in section.items():
        known = _BY_PLAIN.get(id(data))
        if known is not None and known[0] is data and known[1].name == name:
            out[name] = known[1]
            continue
        try:
            out[str(name)] = ComponentFacts.from_dict(str(name), data)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ResultError(f"{where}: {FACTS_KEY}.{name}: not a component facts record ({err})") from None
    return out
