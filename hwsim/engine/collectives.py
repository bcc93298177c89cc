"""Collectives in the alpha-beta form: the bytes each algorithm puts through each port, and its steps.

An op of a collective kind names its device group (the trace's ``device`` cell), the bytes
of each device's buffer (``bytes_read``, ``S`` below) and, in ``kernel``, the algorithm
(``ring``, ``tree``, ``nvls``; empty: the one with the least time on an idle fabric, as
NCCL's tuner picks by its own model of the same form). For a group of ``N`` devices in one
node, each member's fabric port carries, in each direction (``B``: the port's bandwidth
times the algorithm's efficiency, ``alpha``: the fabric's step latency)::

    all_reduce      ring  2(N-1)/N S      2(N-1) steps       tree  2 S   2 ceil(log2 N) steps
                    nvls  S               2 NVLS steps (the switch reduces and multicasts)
    all_gather      ring  (N-1) S         N-1 steps          (S: each device's input; nccl-tests'
    reduce_scatter  ring  (N-1)/N S       N-1 steps           size is the output, N S)
    all_to_all            (N-1)/N S       N-1 steps          (S/N to every peer, a peer per step)
    broadcast       ring  S               N-1 steps          (a pipelined chain from the first member)
    send                  S               1 step             (to the trace's ``peer``; the receiver's
    recv                  nothing         no step             ``recv`` waits for it through ``deps``)

Each algorithm runs under NCCL's Simple protocol or, where the fabric sets ``ll_efficiency``,
its LL protocol (``ll_latency`` per step, bandwidth times ``ll_efficiency``), whichever is
faster for the size, as NCCL's tuner picks. So the contention-free time is ``port bytes / B + steps x alpha`` (plus the fabric's fixed
``op_latency`` per collective, zero in the textbook form): ring all-reduce
``2(N-1)/N S/B + 2(N-1) alpha``. A group over several nodes (the same
number of members in each, NICs on rails) runs ``ring`` as one ring over all ``N`` members,
its node crossings spread over the NICs, and ``tree`` hierarchically (reduce-scatter in the
node, all-reduce of each device's ``S/g`` share across the nodes on its rail, all-gather in
the node): per NIC ``2(k-1)/k S/g`` for ``k`` nodes of ``g`` members. A fabric through the
host (PCIe peer-to-peer) also charges every byte sent to the node's host bridge.

The engine holds each of these channels for its busy time (FIFO on each port), so a second
collective on the same ports, a send through one of them, or other traffic queues behind it;
the steps' latency is paid once the op's bytes are through (the op's ``latency``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.components.base import ceil_cycles, seconds_to_cycles
from hwsim.components.fabric import ALGORITHMS
from hwsim.errors import TraceError

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "send", "recv")
#: Algorithms each collective can run (the first is the default when a choice ties).
CHOICES = {"all_reduce": ("ring", "tree", "nvls"), "all_gather": ("ring",), "reduce_scatter": ("ring",),
           "all_to_all": ("ring",), "broadcast": ("ring",), "send": ("ring",), "recv": ("ring",)}


@dataclass(frozen=True)
class Option:
    """One way to run a collective (an algorithm under a protocol) on one group, per byte of
    each device's buffer: the bytes through each channel, each channel's rate, the latency.
    Costs are linear in the buffer's size, so one option times every size at once."""

    algorithm: str
    channels: np.ndarray   # int64 channel indices
    coef: np.ndarray       # float64 bytes through each channel per byte of the buffer
    rate: np.ndarray       # float64 bytes per cycle each channel sustains for this option
    latency: int           # cycles of the algorithm's steps and the fixed cost

    def busy(self, nbytes: np.ndarray) -> np.ndarray:
        """int64 [sizes, channels] cycles each channel is busy for buffers of ``nbytes``."""
        amount = np.asarray(nbytes, dtype=np.float64)[:, None] * self.coef[None, :]
        return ceil_cycles(amount / self.rate[None, :]) if self.channels.size else \
            np.zeros((len(amount), 0), dtype=np.int64)

    def cycles(self, nbytes: np.ndarray) -> np.ndarray:
        """Contention-free cycles for buffers of ``nbytes`` (idle fabric)."""
        busy = self.busy(nbytes)
        return (busy.max(axis=1) if busy.shape[1] else 0) + self.latency


@dataclass(frozen=True)
class Plan:
    """One collective of one size: bytes and busy cycles per channel, latency, algorithm."""

    algorithm: str
    port_bytes: dict[int, float]   # channel index -> bytes through it
    busy: dict[int, int]           # channel index -> cycles
    latency: int                   # cycles of the algorithm's steps

    @property
    def cycles(self) -> int:
        """Contention-free cycles of the collective (idle fabric)."""
        return (max(self.busy.values()) if self.busy else 0) + self.latency


def options(machine, kind: str, members: tuple[int, ...], algorithm: str, peer: int, where) -> list[Option]:
    """Every :class:`Option` a collective may run as (one when the trace names the
    algorithm); TraceError naming ``where`` (a callable) for a group the machine cannot run
    it on."""
    fabric = machine.fabric
    if machine.devices == 1 or fabric is None:
        raise TraceError(f"{where()}, column 'kind': {kind!r} needs a machine of several devices "
                         f"(machine {machine.config.name!r} has one)")
    if kind in ("send", "recv"):
        if peer < 0 or peer >= machine.devices or len(members) != 1 or peer == members[0]:
            raise TraceError(f"{where()}, column 'peer': a {kind} runs on one device and names another "
                             f"device of the machine as its peer (got device {members}, peer {peer})")
    elif len(members) < 2:
        raise TraceError(f"{where()}, column 'device': a {kind} needs a group of at least 2 devices")
    if algorithm:
        if algorithm not in ALGORITHMS:
            raise TraceError(f"{where()}, column 'kernel': {algorithm!r} is not a collective algorithm "
                             f"(one of {', '.join(ALGORITHMS)}, or empty for the machine's choice)")
        if algorithm not in CHOICES[kind]:
            raise TraceError(f"{where()}, column 'kernel': {kind} does not run as {algorithm!r} "
                             f"(it runs as {', '.join(CHOICES[kind])})")
        algorithms = (algorithm,)
    else:
        algorithms = CHOICES[kind]
    found = [_plan(machine, kind, members, 1.0, a, peer, where, explicit=bool(algorithm), protocol=p)
             for a in algorithms for p in _protocols(fabric, a)]
    return [o for o in found if o is not None]


def choose(found: list[Option], nbytes: np.ndarray) -> np.ndarray:
    """Per size, the index of the fastest option (the first on ties)."""
    cycles = np.stack([np.broadcast_to(o.cycles(nbytes), (len(nbytes),)) for o in found])
    return np.argmin(cycles, axis=0)


def plan(machine, kind: str, members: tuple[int, ...], nbytes: int, algorithm: str, peer: int,
         where) -> Plan:
    """The :class:`Plan` of one collective of ``nbytes`` per device; ``algorithm`` "" picks
    the fastest."""
    found = options(machine, kind, members, algorithm, peer, where)
    sizes = np.array([float(nbytes)])
    best = found[int(choose(found, sizes)[0])]
    busy = best.busy(sizes)[0]
    return Plan(best.algorithm, dict(zip(best.channels.tolist(), (best.coef * float(nbytes)).tolist(), strict=True)),
                dict(zip(best.channels.tolist(), busy.tolist(), strict=True)), best.latency)


def _protocols(fabric, algorithm: str) -> tuple[str, ...]:
    """NCCL's protocols an algorithm may use here: Simple always; LL (low latency, a fraction of
    the bandwidth) on rings and trees when the fabric sets it. The faster one wins."""
    if fabric.config.ll_efficiency > 0 and algorithm != "nvls":
        return ("simple", "ll")
    return ("simple",)


def _plan(machine, kind, members, nbytes, algorithm, peer, where, explicit: bool,
          protocol: str = "simple") -> Option | None:
    fabric, network, ports = machine.fabric, machine.network, machine.ports
    per_node = machine.per_node
    nodes = sorted({d // per_node for d in members})
    n, k = len(members), len(nodes)
    g = n // k
    if kind not in ("send", "recv") and any(sum(1 for d in members if d // per_node == x) != g for x in nodes):
        raise TraceError(f"{where()}, column 'device': a group over several nodes needs the same number of "
                         f"members in each node (got {members})")
    if algorithm == "nvls" and (not fabric.config.in_switch_reduction or k > 1):
        if explicit:
            why = "spans several nodes" if k > 1 else f"fabric {fabric.name!r} has no in-switch reduction"
            raise TraceError(f"{where()}, column 'kernel': nvls is not available here (the group {why})")
        return None
    alpha = seconds_to_cycles(fabric.config.ll_latency if protocol == "ll" else fabric.config.latency,
                              machine.clock_hz)
    alpha_net = seconds_to_cycles(network.config.latency, machine.clock_hz) if network is not None else 0
    s = float(nbytes)
    fab: dict[int, float] = {}
    nic: dict[int, float] = {}

    def both(d: int, amount: float) -> None:
        fab[ports.tx[d]] = fab.get(ports.tx[d], 0.0) + amount
        fab[ports.rx[d]] = fab.get(ports.rx[d], 0.0) + amount

    def nic_both(d: int, amount: float) -> None:
        nic[ports.nic_tx[d]] = nic.get(ports.nic_tx[d], 0.0) + amount
        nic[ports.nic_rx[d]] = nic.get(ports.nic_rx[d], 0.0) + amount

    if k > 1 and network is None:
        raise TraceError(f"{where()}, column 'device': the group spans nodes but machine "
                         f"{machine.config.name!r} has no network")
    steps = 0
    if kind == "recv":   # the transfer is its send's; the receiver only waits for it
        empty = np.zeros(0)
        return Option(algorithm, empty.astype(np.int64), empty, empty, 0)
    if kind == "send":
        a, b = members[0], peer
        fab[ports.tx[a]] = s
        fab[ports.rx[b]] = s
        if a // per_node != b // per_node:
            nic[ports.nic_tx[a]] = s
            nic[ports.nic_rx[b]] = s
            return _finish(machine, algorithm, fab, nic, alpha_net, protocol)
        return _finish(machine, algorithm, fab, nic, alpha, protocol)
    if kind == "all_reduce":
        if algorithm == "ring":
            per_port, steps = 2 * (n - 1) / n * s, 2 * (n - 1)
            crossing = per_port / g if k > 1 else 0.0
        elif algorithm == "tree":
            if k == 1:
                per_port, steps, crossing = 2 * s, 2 * math.ceil(math.log2(n)), 0.0
            else:
                per_port, steps = 2 * (g - 1) / g * s, 2 * (g - 1)
                crossing = 2 * (k - 1) / k * s / g
        else:  # nvls: each device sends its buffer to the switch once and receives the sum once
            per_port = s
            latency = 2 * seconds_to_cycles(fabric.config.nvls_latency, machine.clock_hz)
            for d in members:
                both(d, per_port)
            return _finish(machine, algorithm, fab, nic, 0, protocol, fixed_latency=latency)
    elif kind in ("all_gather", "reduce_scatter", "all_to_all"):
        per_port = (n - 1) * s if kind == "all_gather" else (n - 1) / n * s
        steps = n - 1   # all-to-all: one exchange with each peer in turn
        if k > 1:
            if kind == "all_to_all":  # the share sent to devices of other nodes leaves by the NIC
                crossing = (k - 1) * g / n * s
                per_port = (g - 1) / n * s
            else:
                crossing = per_port / g
        else:
            crossing = 0.0
    else:  # broadcast: a pipelined chain from the first member
        per_port, steps = s, n - 1
        crossing = s / g if k > 1 else 0.0
    for d in members:
        both(d, per_port)
    if crossing:   # bytes each member sends across nodes; members sharing a NIC add up on it
        for d in members:
            nic_both(d, crossing)
    if k > 1 and algorithm == "tree":
        latency = 2 * (g - 1) * alpha + 2 * math.ceil(math.log2(k)) * alpha_net
    elif k > 1:
        latency = steps * alpha_net
    else:
        latency = steps * alpha
    return _finish(machine, algorithm, fab, nic, 0, protocol, fixed_latency=latency)


def _finish(machine, algorithm, fab, nic, step_latency, protocol, fixed_latency=None) -> Option:
    """The option's channels with their bytes per buffer byte and rates (the host bridge of a
    fabric through the host carries every byte sent), and its latency."""
    fabric, network, ports = machine.fabric, machine.network, machine.ports
    port_bytes = dict(fab)
    if fabric.config.topology == "host":
        sent: dict[int, float] = {}
        for channel, amount in fab.items():
            if channel in ports.tx:
                node = ports.tx.index(channel) // machine.per_node
                sent[ports.bridge[node]] = sent.get(ports.bridge[node], 0.0) + amount
        port_bytes.update(sent)
    port_bytes.update(nic)
    keep = fabric.config.ll_efficiency if protocol == "ll" else 1.0
    rates = []
    for channel in port_bytes:
        if channel in nic:
            rate = network.bytes_per_cycle_of(algorithm)
        elif fabric.config.topology == "host" and channel in ports.bridge:
            rate = fabric.config.host_bandwidth * fabric.efficiency_of(algorithm) / machine.clock_hz
        else:
            rate = fabric.bytes_per_cycle_of(algorithm)
        rates.append(rate * keep)
    latency = fixed_latency if fixed_latency is not None else step_latency
    latency += seconds_to_cycles(fabric.config.op_latency, machine.clock_hz)
    return Option(algorithm if protocol == "simple" else f"{algorithm}_ll",
                  np.fromiter(port_bytes, dtype=np.int64, count=len(port_bytes)),
                  np.fromiter(port_bytes.values(), dtype=np.float64, count=len(port_bytes)),
                  np.asarray(rates, dtype=np.float64), int(latency))
