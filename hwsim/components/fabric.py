"""Fabrics between devices: the node's device fabric (NVLink + NVSwitch, PCIe through the host)
and the network between nodes (one NIC per device, rail-optimised).

A fabric is a memory resource the engine splits into channels: one per device and direction
(the device's port: ``tx`` towards the fabric, ``rx`` from it), plus, for a fabric routed
through the host (``topology: host``: PCIe peer-to-peer via the root complex), one channel
per node that every byte crossing the node's host bridge shares. A network has one port per
NIC and direction; devices share a NIC when a node has fewer NICs than devices.

Collectives charge these channels with the bytes each algorithm moves through each port
(:mod:`hwsim.engine.collectives`): ``bandwidth`` is the datasheet figure per device and
direction, ``efficiency`` the fraction an algorithm sustains (NCCL's protocol overhead),
``latency`` the time of one algorithm step (alpha).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hwsim.components.base import Component, MemoryResource, register
from hwsim.components.facts import Bandwidth, ComponentFacts
from hwsim.config.fields import param

#: Collective algorithms (NCCL's names) and what each needs of the fabric.
ALGORITHMS = ("ring", "tree", "nvls")


class DeviceFabric(MemoryResource):
    """What fabrics and networks share: per-algorithm efficiency and per-step latency."""

    role = "link"

    def facts(self) -> ComponentFacts:
        """A fabric's record: no capacity, and the bandwidth of one port per direction (the
        engine's queues are its ports: ``<name>:d<i>.tx`` and ``.rx``, NICs, host bridges)."""
        peak = float(self.config.bandwidth)
        return dataclasses.replace(
            Component.facts(self),
            bandwidth=(Bandwidth("port", f"{self.name}:*", peak, peak * self.efficiency_of("default")),))

    def efficiency_of(self, algorithm: str) -> float:
        """Fraction of ``bandwidth`` an algorithm's transfers sustain on this fabric."""
        return float(self.config.efficiency.get(algorithm, self.config.efficiency.get("default", 1.0)))

    def bytes_per_cycle_of(self, algorithm: str) -> float:
        """Sustained bytes per reference cycle of one port (one direction) for ``algorithm``."""
        return self.config.bandwidth * self.efficiency_of(algorithm) / self.ref_clock_hz

    @property
    def bytes_per_cycle(self) -> float:
        return self.bytes_per_cycle_of("default")


def _check_efficiency(efficiency: dict, allowed: tuple[str, ...]):
    for key, value in efficiency.items():
        if key not in (*allowed, "default"):
            yield f"efficiency.{key}", f"not an algorithm of this fabric (one of {', '.join((*allowed, 'default'))})"
        elif not 0 < value <= 1:
            yield f"efficiency.{key}", f"must be in (0, 1], got {value:g}"


@register("fabric")
class Fabric(DeviceFabric):
    """The fabric joining the devices of a node (``devices`` at the machine's top level).

    ``topology: switch`` (NVLink to NVSwitch): every device has a full-duplex port of
    ``bandwidth`` per direction into a non-blocking switch; with ``in_switch_reduction``
    (NVLink SHARP, H100 and later NVSwitch) the switch reduces and multicasts, so an NVLS
    all-reduce sends and receives each byte once per device. ``topology: host`` (PCIe
    peer-to-peer through the CPU): each device's PCIe port per direction, and all traffic
    of the node also crosses the host bridge at ``host_bandwidth`` (shared).
    """

    @dataclass(frozen=True, kw_only=True)
    class Config:
        topology: str = param("switch", unit="text", choices=("switch", "host"),
                              help="switch: NVLink into a non-blocking NVSwitch; host: PCIe peer-to-peer "
                                   "through the CPU's root complex")
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="datasheet bandwidth of one device's port per direction, bytes/s")
        efficiency: dict = param({}, unit="map:count",
                                 help="fraction of bandwidth each algorithm sustains (ring, tree, nvls, "
                                      "default; missing: default, else 1)")
        latency: float = param(0.0, unit="time", minimum=0.0, help="time of one algorithm step (alpha), s")
        in_switch_reduction: bool = param(False, unit="bool",
                                          help="the switch reduces and multicasts (NVLS all-reduce)")
        nvls_latency: float = param(0.0, unit="time", minimum=0.0,
                                    help="time of one NVLS step (device to switch and back), s")
        ll_efficiency: float = param(0.0, unit="count", minimum=0.0, maximum=1.0,
                                     help="NCCL's low-latency protocol: fraction of an algorithm's sustained "
                                          "bandwidth it keeps (LL sends 4 data bytes per 8-byte line: 0.5); "
                                          "0 = no LL protocol")
        ll_latency: float = param(0.0, unit="time", minimum=0.0,
                                  help="time of one ring or tree step under the LL protocol, s")
        op_latency: float = param(0.0, unit="time", minimum=0.0,
                                  help="fixed time of every collective and send on the fabric (the "
                                       "kernel's setup and the group's handshake), s")
        host_bandwidth: float = param(0.0, unit="bandwidth", minimum=0.0,
                                      help="topology host: bandwidth of the node's host bridge every "
                                           "peer-to-peer byte crosses, per direction, bytes/s")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="transfer energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            yield from _check_efficiency(self.efficiency, ALGORITHMS)
            if self.topology == "host" and not self.host_bandwidth > 0:
                yield "host_bandwidth", "a fabric through the host needs host_bandwidth > 0"
            if self.topology == "host" and self.in_switch_reduction:
                yield "in_switch_reduction", "only a switch reduces in the fabric"

    @property
    def latency_cycles(self) -> int:
        return 0   # charged per algorithm step by the collective model, not per byte


@register("network")
class Network(DeviceFabric):
    """The network between the nodes of a machine (``nodes`` at the machine's top level): NICs
    of ``bandwidth`` per direction, ``nics_per_node`` of them, rail-optimised (device ``i``
    of every node reaches device ``i`` of the others through its own NIC and rail switch)."""

    @dataclass(frozen=True, kw_only=True)
    class Config:
        bandwidth: float = param(unit="bandwidth", minimum=0.0, exclusive_minimum=True,
                                 help="datasheet bandwidth of one NIC per direction, bytes/s")
        nics_per_node: int = param(1, unit="count", minimum=1, help="NICs per node (devices share them evenly)")
        efficiency: dict = param({}, unit="map:count",
                                 help="fraction of bandwidth each algorithm sustains (ring, tree, default)")
        latency: float = param(0.0, unit="time", minimum=0.0, help="time of one step across the network, s")
        topology: str = param("rail", unit="text", choices=("rail",), help="rail: NIC i of every node on rail i")
        energy_per_bit: float = param(0.0, unit="energy_bit", help="transfer energy, pJ/bit")
        leakage_power: float = param(0.0, unit="power", help="static power, W")
        source: str = param("", unit="text", help="where the figures come from")
        provenance: dict = param({}, unit="map:text", help="per-constant source notes")

        def problems(self):
            """Cross-field rules, checked when the machine is loaded."""
            yield from _check_efficiency(self.efficiency, ("ring", "tree"))

    @property
    def latency_cycles(self) -> int:
        return 0
