"""The channels of a machine's fabrics: each device's fabric port per direction, each node's
host bridge (a fabric through the host), each NIC per direction (the network).

Collectives and point-to-point transfers hold these channels like any op holds a tier or a
link direction, so two collectives on the same devices, or a collective and a send that
share a port, queue on it (:mod:`hwsim.engine.collectives` says how many bytes each
algorithm puts through each port).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.components.base import MemoryResource
from hwsim.trace.device_sets import parse_device_set  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from hwsim.engine.machine import Channel, Machine


class FabricPort(MemoryResource):
    """One port (or host bridge, or NIC direction) of a fabric: a resource of its own, so that
    records count its bytes (``bytes_<fabric>:<port>``), a collective is named after its
    busiest port and the timeline draws a track per port. Its figures are the fabric's."""

    kind = "fabric_port"

    def __init__(self, name: str, fabric) -> None:
        super().__init__(name, fabric.config, fabric.ref_clock_hz)
        self.fabric = fabric

    @property
    def latency_cycles(self) -> int:
        return 0

    @property
    def leakage_w(self) -> float:
        return 0.0   # the fabric's own leakage is charged once, to the fabric


class FabricPorts:
    """Channel indices of the fabric and network ports of ``machine``; the channels start at
    index ``first`` of the machine's channel list."""

    def __init__(self, machine: Machine, first: int) -> None:
        from hwsim.engine.machine import Channel

        self.channels: list[Channel] = []
        self.tx: list[int] = []      # device -> its fabric port towards the fabric
        self.rx: list[int] = []      # device -> its fabric port from the fabric
        self.bridge: list[int] = []  # node -> its host bridge (topology host), per direction pair
        self.nic_tx: list[int] = []  # device -> the NIC it sends through
        self.nic_rx: list[int] = []
        fabric, network = machine.fabric, machine.network
        per_node = machine.per_node

        def add(name: str, resource) -> int:
            self.channels.append(Channel(name, FabricPort(name, resource)))
            return first + len(self.channels) - 1

        if fabric is not None:
            for d in range(machine.devices):
                self.tx.append(add(f"{fabric.name}:d{d}.tx", fabric))
                self.rx.append(add(f"{fabric.name}:d{d}.rx", fabric))
            if fabric.config.topology == "host":
                for node in range(machine.config.nodes):
                    self.bridge.append(add(f"{fabric.name}:n{node}.host", fabric))
        if network is not None:
            nics = network.config.nics_per_node
            ports: dict[tuple[int, int], tuple[int, int]] = {}
            for d in range(machine.devices):
                node, local = divmod(d, per_node)
                nic = local * nics // per_node
                if (node, nic) not in ports:
                    ports[(node, nic)] = (add(f"{network.name}:n{node}.nic{nic}.tx", network),
                                          add(f"{network.name}:n{node}.nic{nic}.rx", network))
                self.nic_tx.append(ports[(node, nic)][0])
                self.nic_rx.append(ports[(node, nic)][1])

    def node_of(self, device: int, per_node: int) -> int:
        return device // per_node
