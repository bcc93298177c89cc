"""`Machine`: the components of a :class:`MachineConfig`, built and wired.

The machine answers three questions for the cost model: which compute unit runs an op
(dispatch), which tier holds a logical memory space (placement), and which memory
resources (tiers and link directions) a byte crosses from one tier to another (routes).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hwsim.components.base import ComputeUnit, MemoryResource, built_component, component_class
from hwsim.components.fabric import DeviceFabric, Fabric, Network
from hwsim.components.facts import FACTS_KEY, facts_section
from hwsim.components.host import HostRuntime
from hwsim.components.link import Link
from hwsim.config.machine import MachineConfig
from hwsim.engine.ports import FabricPorts
from hwsim.errors import ConfigError, TraceError, did_you_mean
from hwsim.memo import ByIdentity
from hwsim.trace.device_sets import parse_device_set
from hwsim.trace.schema import COLLECTIVE_KINDS, KINDS

#: Op kinds that never occupy a compute unit (bookkeeping).
BOOKKEEPING_KINDS = ("alloc", "free", "sync", *COLLECTIVE_KINDS)  # collectives: the fabric, no unit
#: Op kinds that run without a unit when the machine has none for them (a plain copy).
UNITLESS_OK = ("transfer",)


@dataclass(frozen=True)
class Channel:
    """One queue the engine keeps: a tier, or one direction of a link (``to``: the tier that
    direction leads to, which sets its sustained bandwidth)."""

    name: str
    resource: MemoryResource
    to: str | None = None

    def busy_cycles(self, nbytes, ops=None, role: str = "read"):
        """Cycles this channel is occupied moving ``nbytes`` (see MemoryResource.busy_cycles)."""
        return self.resource.busy_cycles(nbytes, ops, role, to=self.to)


class Machine:
    """Built components plus placement, dispatch and routing tables."""

    def __init__(self, config: MachineConfig) -> None:
        self.config = config
        self.clock_hz = config.clock_hz
        self.devices = config.device_count
        self.per_node = config.devices
        self.components: dict[str, object] = {}
        fabric_specs = [s for s in config.components if issubclass(component_class(s.kind, s.name), DeviceFabric)]
        # Kind 0 is the file's own device; the others come from ``device_kinds`` (each its
        # machine file's components, placement and dispatch).
        self.kinds: list[MachineConfig] = [config, *(k.machine for k in config.device_kinds)]
        self.kind_names = ["", *(k.name for k in config.device_kinds)]
        self.kind_of = [0] * self.devices
        for k, kind in enumerate(config.device_kinds, start=1):
            for d in kind.devices:
                self.kind_of[d] = k
        kind_specs = [[s for s in config.components if s not in fabric_specs],
                      *([*kind.machine.components] for kind in config.device_kinds)]
        # A machine of several devices builds every component but the fabrics once per device,
        # named ``d<i>.<name>``; a single device keeps the file's names.
        for d in range(self.devices):
            kind = self.kinds[self.kind_of[d]]
            for spec in kind_specs[self.kind_of[d]]:
                cls = component_class(spec.kind, spec.name)
                name = self.device_name(d, spec.name)
                cfg = spec.config
                if getattr(cfg, "clock", None) == 0.0 and kind.clock_hz != config.clock_hz:
                    cfg = dataclasses.replace(cfg, clock=kind.clock_hz)   # its own file's clock
                if issubclass(cls, Link) and self.devices > 1:
                    cfg = dataclasses.replace(cfg, between=tuple(self.device_name(d, t) for t in cfg.between),
                                              efficiency_to={self.device_name(d, t): v
                                                             for t, v in cfg.efficiency_to.items()})
                if hasattr(cfg, "memory") and self.devices > 1:
                    cfg = dataclasses.replace(cfg, memory=self.device_name(d, cfg.memory))
                if getattr(cfg, "spill_to", "") and self.devices > 1:
                    cfg = dataclasses.replace(cfg, spill_to=self.device_name(d, cfg.spill_to))
                self.components[name] = built_component(cls, name, cfg, config.clock_hz)
        for spec in fabric_specs:
            self.components[spec.name] = built_component(component_class(spec.kind, spec.name), spec.name,
                                                         spec.config, config.clock_hz)
        self.units = {n: c for n, c in self.components.items() if isinstance(c, ComputeUnit)}
        self.tiers = {n: c for n, c in self.components.items()
                      if isinstance(c, MemoryResource) and not isinstance(c, Link | DeviceFabric)}
        self.links = {n: c for n, c in self.components.items() if isinstance(c, Link)}
        hosts = [c for c in self.components.values() if isinstance(c, HostRuntime)]
        for k, kind in enumerate(self.kinds):
            own = [c.name for c in kind.components if c.kind == "host_runtime"]
            if len(own) > 1:
                where = "components" if k == 0 else f"device_kinds.{self.kind_names[k]}: {kind.source}: components"
                raise ConfigError(f"{config.source}: {where}: at most one host_runtime, got {', '.join(own)}")
        #: Each device's host runtime (None: the kernels of that device launch for free).
        self.device_hosts: list[HostRuntime | None] = [
            next((h for h in hosts if h.name.startswith(f"d{d}.")), None) if self.devices > 1 else
            (hosts[0] if hosts else None) for d in range(self.devices)]
        self.host: HostRuntime | None = self.device_hosts[0]
        self.channels: list[Channel] = [Channel(n, t) for n, t in self.tiers.items()]
        for name, link in self.links.items():
            a, b = link.config.between
            self.channels.append(Channel(f"{name}:{a}->{b}", link, to=b))
            self.channels.append(Channel(f"{name}:{b}->{a}", link, to=a))
        for name, unit in self.units.items():
            if unit.moves_data:  # a DMA group: its bandwidth is a queue of its own
                self.channels.append(Channel(name, unit))
        self.fabric: Fabric | None = next((c for c in self.components.values() if isinstance(c, Fabric)), None)
        self.network: Network | None = next((c for c in self.components.values() if isinstance(c, Network)), None)
        self.ports = FabricPorts(self, len(self.channels))
        self.channels.extend(self.ports.channels)
        self.channel_index = {ch.name: i for i, ch in enumerate(self.channels)}
        # Record ``component`` names: the units, then the memory resources a unit-less
        # transfer is named after (its bottleneck), then "" for bookkeeping ops.
        self.resource_names = list(dict.fromkeys(ch.resource.name for ch in self.channels))
        self.record_components = [*self.units, *(r for r in self.resource_names if r not in self.units), ""]
        where = {name: i for i, name in enumerate(self.record_components)}
        self.channel_resource = [where[ch.resource.name] for ch in self.channels]
        self.no_component = len(self.record_components) - 1
        self._routes: dict[tuple[str, str], tuple[int, ...]] = {}
        # (kind index, space) -> tier name in the kind's file, decided per run (spills)
        self.moved_spaces: dict[tuple[int, str], str] = {}
        self._device_sets: dict[str, tuple[int, ...]] = {}

    def device_name(self, device: int, name: str) -> str:
        """The name of component ``name`` of ``device`` (the file's name on a single device)."""
        return name if self.devices == 1 else f"d{device}.{name}"

    def device_set(self, text: str, where: str | Callable[[], str]) -> tuple[int, ...]:
        """The devices a trace's ``device`` cell names: ``""`` every device, ``"3"``, ``"0-3"``
        or ``"0,2,4"`` (sorted, distinct). TraceError naming ``where`` for a bad cell."""
        found = self._device_sets.get(text)
        if found is None:
            try:
                found = parse_device_set(text, self.devices)
            except ValueError as err:
                where = where() if callable(where) else where
                raise TraceError(f"{where}, column 'device': {err} (machine {self.config.name!r} has "
                                 f"{self.devices} device{'s' if self.devices > 1 else ''})") from None
            self._device_sets[text] = found
        return found

    def unit_key(self, name: str) -> tuple:
        """What unit ``name``'s cost model depends on: its class, config and the reference
        clock (equal keys give equal costs for equal ops)."""
        keys = self.__dict__.setdefault("_unit_keys", {})
        if name not in keys:
            unit = self.units[name]
            keys[name] = (type(unit).__qualname__, unit.ref_clock_hz, _config_text(unit.config))
        return keys[name]

    def channel_key(self, index: int) -> tuple:
        """What channel ``index``'s busy cycles and energy depend on: its resource's class
        and config, the reference clock and the direction."""
        keys = self.__dict__.setdefault("_channel_keys", {})
        if index not in keys:
            channel = self.channels[index]
            resource = channel.resource
            keys[index] = (type(resource).__qualname__, resource.ref_clock_hz, _config_text(resource.config),
                           channel.to)
        return keys[index]

    @property
    def layout_key(self) -> tuple:
        """What the cost pass's layout depends on: which unit runs an op (dispatch, the
        units' kinds), which tier holds a space (placement, spills) and which channels a
        path crosses (the tiers, the links' ends, in file order). None of the numbers a
        sweep varies (bandwidths, latencies, clocks, energies, sizes) is in it: machines
        with equal keys route every op alike, and their costs differ only in those."""
        return self._structure, tuple(sorted(self.moved_spaces.items()))

    @cached_property
    def _structure(self) -> tuple:
        return (self.devices, tuple(self.kind_of),
                tuple((name, type(c).__qualname__) for name, c in self.components.items()),
                tuple(ch.name for ch in self.channels),
                tuple((unit.home, unit.moves_data, tuple(unit.handles.items())) for unit in self.units.values()),
                # With the units' kinds (their ``handles``) above, these decide the dispatch.
                tuple(tuple(sorted(kind.dispatch.items())) for kind in self.kinds),
                tuple(tuple(sorted(kind.placement.items())) for kind in self.kinds))

    @cached_property
    def config_dict(self) -> dict[str, Any]:
        """``config.to_dict()`` with every component's facts record under ``facts`` (the
        resolved machine a run keeps), computed once (treat as read-only). On a machine of
        several devices, ``components`` and ``facts`` are every device's (``d<i>.<name>``)
        and the fabrics'."""
        out = {**self.config.to_dict(), FACTS_KEY: facts_section(self.config)}
        if self.devices > 1:
            from hwsim.config.fields import to_plain

            out["components"] = {name: {"kind": c.kind, **to_plain(c.config)} for name, c in self.components.items()}
            out[FACTS_KEY] = {name: c.facts().to_dict() for name, c in self.components.items()}
        return out

    # -- dispatch -----------------------------------------------------------------------
    @cached_property
    def dispatch(self) -> dict[str, str]:
        """Op kind → unit name of the file (the first device's kind): see :meth:`dispatch_of`."""
        return self.dispatch_of(self.kind_of[0])

    def dispatch_of(self, kind_index: int) -> dict[str, str]:
        """Op kind → unit name (without ``d<i>.``) on devices of kind ``kind_index``: the
        kind's YAML ``dispatch`` first, else the unit that prefers the op kind most (ties:
        YAML order)."""
        tables = self.__dict__.setdefault("_dispatch_tables", {})
        if kind_index in tables:
            return tables[kind_index]
        config = self.kinds[kind_index]
        first = self.kind_of.index(kind_index) if kind_index in self.kind_of else None
        prefix = self.device_name(first, "") if first is not None else None
        table = {}
        for kind in KINDS:
            if kind in BOOKKEEPING_KINDS:
                continue
            if kind in config.dispatch:
                table[kind] = config.dispatch[kind]
                continue
            best = -1
            for name, unit in self.units.items():
                if prefix is None or not name.startswith(prefix):
                    continue
                preference = unit.handles.get(kind, -1)
                if preference > best:
                    table[kind], best = self.file_name(name), preference
        tables[kind_index] = table
        return table

    def file_name(self, name: str) -> str:
        """A device's component name without its ``d<i>.`` prefix."""
        return name.split(".", 1)[1] if self.devices > 1 else name

    def _kind_label(self, device: int) -> str:
        """`` (device N, kind 'x')`` for a device of a ``device_kinds`` kind, else empty."""
        k = self.kind_of[device]
        return f" (device {device}, kind {self.kind_names[k]!r})" if k else ""

    def unit_for(self, kind: str, explicit: str, where: str | Callable[[], str], device: int = 0) -> str | None:
        """The unit of ``device`` that runs an op of ``kind`` (``explicit`` from the trace's unit
        column wins: a unit of the device's machine file, run by the op's device).

        ``where`` names the op for errors (a callable is only called for one).
        """
        if explicit:
            where = where() if callable(where) else where
            full = self.device_name(device, explicit)
            if full not in self.units:
                prefix = self.device_name(device, "")
                names = tuple(self.file_name(n) for n in self.units if self.devices == 1 or n.startswith(prefix))
                raise TraceError(f"{where}, column 'unit': {explicit!r} is not a compute unit of "
                                 f"machine {self.config.name!r}{self._kind_label(device)}{did_you_mean(explicit, names)}")
            if kind not in self.units[full].handles:
                raise TraceError(f"{where}, column 'unit': {explicit!r} cannot run {kind!r} ops")
            return full
        dispatch = self.dispatch_of(self.kind_of[device])
        if kind in BOOKKEEPING_KINDS or (kind in UNITLESS_OK and kind not in dispatch):
            return None
        if kind not in dispatch:
            where = where() if callable(where) else where
            raise TraceError(f"{where}, column 'kind': machine {self.config.name!r}{self._kind_label(device)} "
                             f"has no unit that runs {kind!r} ops (add one, or a dispatch entry)")
        return self.device_name(device, dispatch[kind])

    # -- placement ----------------------------------------------------------------------
    def tier_of(self, space: str, where: str | Callable[[], str], device: int = 0) -> str:
        """The tier of ``device`` that holds logical ``space`` (``placement.default`` of the
        device's machine file as a fallback); ``where`` names the op for the error (a callable
        is only called for one). Spills move a space on every device of a kind alike."""
        k = self.kind_of[device]
        moved = self.moved_spaces.get((k, space))
        if moved is not None:
            return self.device_name(device, moved)
        placement = self.kinds[k].placement
        if space in placement:
            return self.device_name(device, placement[space])
        if self.device_name(device, space) in self.tiers:
            return self.device_name(device, space)  # a trace may name a physical tier directly
        if "default" in placement:
            return self.device_name(device, placement["default"])
        where = where() if callable(where) else where
        raise TraceError(f"{where}: space {space!r} is not placed on machine {self.config.name!r}"
                         f"{self._kind_label(device)} (add placement.{space} or placement.default to the machine YAML)")

    def device_of(self, name: str) -> int:
        """The device a component (``d<i>.<name>``) belongs to (0 on a single device)."""
        return int(name.split(".", 1)[0][1:]) if self.devices > 1 else 0

    def spill_key(self, device: int, space: str) -> str:
        """How a run's ``spills`` names ``space`` moved on devices of ``device``'s kind: the
        space's name, prefixed by the kind's name for a ``device_kinds`` kind."""
        k = self.kind_of[device]
        return f"{self.kind_names[k]}.{space}" if k else space

    def with_moved_spaces(self, moved: dict[tuple[int, str], str]) -> Machine:
        """A copy of this machine whose ``moved`` spaces live on other tiers (spills):
        (kind index, space) -> the tier's name in its machine file."""
        copy = Machine.__new__(Machine)
        copy.__dict__.update(self.__dict__)
        copy.moved_spaces = dict(moved)
        return copy

    def __repr__(self) -> str:
        return f"Machine({self.config.name!r})"

    # -- routing ------------------------------------------------------------------------
    def route(self, src_tier: str, dst_tier: str) -> tuple[int, ...]:
        """Channels a byte crosses from ``src_tier`` to ``dst_tier``, both tiers included.

        Shortest path over links (fewest hops; ties by YAML order). Raises ConfigError when
        the tiers are not connected.
        """
        key = (src_tier, dst_tier)
        if key not in self._routes:
            self._routes[key] = self._find_route(src_tier, dst_tier)
        return self._routes[key]

    def _find_route(self, src: str, dst: str) -> tuple[int, ...]:
        if src == dst:
            return (self.channel_index[src],)
        previous: dict[str, tuple[str, str] | None] = {src: None}
        queue = deque([src])
        while queue:
            here = queue.popleft()
            if here == dst:
                break
            for name, link in self.links.items():
                a, b = link.config.between
                for x, y in ((a, b), (b, a)):
                    if x == here and y not in previous:
                        previous[y] = (here, f"{name}:{x}->{y}")
                        queue.append(y)
        if dst not in previous:
            raise ConfigError(f"{self.config.source}: no link path from tier {src!r} to tier {dst!r}")
        hops: list[str] = [dst]
        node = dst
        while previous[node] is not None:
            node, channel = previous[node]
            hops.extend([channel, node])
        return tuple(self.channel_index[h] for h in reversed(hops))


_CONFIG_TEXTS = ByIdentity()


def _config_text(config: Any) -> str:
    """``repr(config)``, once per config object (see :mod:`hwsim.memo`)."""
    return _CONFIG_TEXTS.get(config, repr)


_BUILT: dict[int, tuple[weakref.ref, Machine]] = {}
_BUILT_MAX = 64


def build_machine(machine: MachineConfig | Machine) -> Machine:
    """The built :class:`Machine` of ``machine`` (itself if already built).

    Built machines are cached per config object (while it is alive), so calling
    ``simulate(config, trace)`` in a loop builds the components once.
    """
    if isinstance(machine, Machine):
        return machine
    key = id(machine)
    hit = _BUILT.get(key)
    if hit is not None and hit[0]() is machine:
        return hit[1]
    built = Machine(machine)
    if len(_BUILT) >= _BUILT_MAX:
        for stale in [k for k, (ref, _) in _BUILT.items() if ref() is None] or list(_BUILT)[:1]:
            del _BUILT[stale]
    _BUILT[key] = (weakref.ref(machine), built)
    return built
