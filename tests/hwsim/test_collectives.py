"""Collectives on a tiny node: the alpha-beta closed forms, exactly, and contention on ports."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.errors import TraceError
from hwsim.trace import Trace

B = 8          # bytes per cycle per port and direction (8 GB/s at 1 GHz)
ALPHA = 100    # cycles per ring / tree step
NVLS = 50      # cycles per NVLS step
NET_B, NET_ALPHA = 4, 300

NODE = """
name: tiny-node
extends: tiny
devices: {devices}
nodes: {nodes}
components:
  nvlink:
    kind: fabric
    bandwidth: 8 GB/s
    latency: 100 ns
    in_switch_reduction: true
    nvls_latency: 50 ns
    source: "[A] round test value"
{network}"""
NETWORK = """  ib:
    kind: network
    bandwidth: 4 GB/s
    nics_per_node: {nics}
    latency: 300 ns
    source: "[A] round test value"
"""


def node(tmp_path, devices=4, nodes=1, nics=None):
    network = NETWORK.format(nics=nics or devices) if nodes > 1 else ""
    path = tmp_path / f"node{devices}x{nodes}.yaml"
    path.write_text(NODE.format(devices=devices, nodes=nodes, network=network))
    return hwsim.load_arch(path)


def one(machine, fidelity="event", **op):
    trace = Trace.from_ops([dict(op_id=0, **op)])
    return int(hwsim.simulate(machine, trace, fidelity=fidelity).summary["total_cycles"])


@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_all_reduce_is_the_textbook_form(tmp_path, n):
    s = 8 * n * 1024
    assert one(node(tmp_path, n), kind="all_reduce", bytes_read=s, kernel="ring") == \
        2 * (n - 1) * s // n // B + 2 * (n - 1) * ALPHA


@pytest.mark.parametrize("kind", ["all_gather", "reduce_scatter"])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_all_gather_and_reduce_scatter_move_n_minus_1_over_n_of_the_whole(tmp_path, kind, n):
    whole = 8 * n * 512                      # nccl-tests' size: the gathered output / scattered input
    per_device = whole // n if kind == "all_gather" else whole
    assert one(node(tmp_path, n), kind=kind, bytes_read=per_device, kernel="ring") == \
        (n - 1) * whole // n // B + (n - 1) * ALPHA


@pytest.mark.parametrize("n", [2, 4, 8])
def test_tree_nvls_all_to_all_broadcast_and_send(tmp_path, n):
    machine, s = node(tmp_path, n), 8 * n * 256
    assert one(machine, kind="all_reduce", bytes_read=s, kernel="tree") == 2 * s // B + 2 * math.ceil(math.log2(n)) * ALPHA
    assert one(machine, kind="all_reduce", bytes_read=s, kernel="nvls") == s // B + 2 * NVLS
    assert one(machine, kind="all_to_all", bytes_read=s) == (n - 1) * s // n // B + (n - 1) * ALPHA
    assert one(machine, kind="broadcast", bytes_read=s) == s // B + (n - 1) * ALPHA
    assert one(machine, kind="send", device="0", peer=n - 1, bytes_read=s) == s // B + ALPHA


def test_auto_picks_the_fastest_algorithm_for_the_size(tmp_path):
    machine = node(tmp_path, 8)
    for s in (64, 8 * 1024, 64 * 1024 * 1024):
        times = [one(machine, kind="all_reduce", bytes_read=s, kernel=a) for a in ("ring", "tree", "nvls")]
        assert one(machine, kind="all_reduce", bytes_read=s) == min(times)


def test_two_concurrent_collectives_queue_on_the_same_ports(tmp_path):
    machine, n, s = node(tmp_path, 4), 4, 4096
    ring = 2 * (n - 1) * s // n // B
    ops = [dict(op_id=0, kind="all_reduce", bytes_read=s, kernel="ring", stream="a"),
           dict(op_id=1, kind="all_reduce", bytes_read=s, kernel="ring", stream="b")]
    event = hwsim.simulate(machine, Trace.from_ops(ops)).records.set_index("op_id")
    assert event.loc[0, "end_cycle"] == ring + 2 * (n - 1) * ALPHA
    assert event.loc[1, "end_cycle"] == 2 * ring + 2 * (n - 1) * ALPHA
    roofline = hwsim.simulate(machine, Trace.from_ops(ops), fidelity="roofline").records.set_index("op_id")
    assert roofline.loc[1, "end_cycle"] == ring + 2 * (n - 1) * ALPHA   # no contention: the lower bound
    # Disjoint groups share no port: they do not queue.
    ops[1]["device"], ops[0]["device"] = "2-3", "0-1"
    apart = hwsim.simulate(machine, Trace.from_ops(ops)).records.set_index("op_id")
    assert apart.loc[1, "end_cycle"] == apart.loc[0, "end_cycle"] == s // B + 2 * ALPHA


def test_a_send_queues_behind_a_collective_on_its_port_and_recv_waits_for_it(tmp_path):
    machine, s = node(tmp_path, 4), 4096
    ops = [dict(op_id=0, kind="all_gather", device="0-1", bytes_read=s, stream="a"),
           dict(op_id=1, kind="send", device="1", peer=3, bytes_read=s, stream="b"),
           dict(op_id=2, kind="recv", device="3", peer=1, bytes_read=s, deps=[1], stream="c")]
    rec = hwsim.simulate(machine, Trace.from_ops(ops)).records.set_index("op_id")
    gather = s // B
    assert rec.loc[0, "end_cycle"] == gather + ALPHA
    assert rec.loc[1, "end_cycle"] == 2 * gather + ALPHA    # device 1's tx port is busy first
    assert rec.loc[2, "end_cycle"] == rec.loc[1, "end_cycle"]


def test_groups_over_two_nodes_cross_the_nics(tmp_path):
    machine, g, k, s = node(tmp_path, 4, nodes=2), 4, 2, 8 * 1024
    n = g * k
    # Ring over all 8: NVLink ports carry 2(n-1)/n S, each NIC its member's 1/g of that.
    fabric, nic = 2 * (n - 1) * s / n / B, 2 * (n - 1) * s / n / g / NET_B
    assert one(machine, kind="all_reduce", bytes_read=s, kernel="ring") == \
        math.ceil(max(fabric, nic)) + 2 * (n - 1) * NET_ALPHA
    # Tree: reduce-scatter in the node, all-reduce of S/g per rail, all-gather in the node.
    fabric, nic = 2 * (g - 1) * s / g / B, 2 * (k - 1) * s / k / g / NET_B
    assert one(machine, kind="all_reduce", bytes_read=s, kernel="tree") == \
        math.ceil(max(fabric, nic)) + 2 * (g - 1) * ALPHA + 2 * math.ceil(math.log2(k)) * NET_ALPHA
    # Devices sharing a NIC add up on it.
    shared = node(tmp_path, 4, nodes=2, nics=2)
    assert one(shared, kind="all_reduce", bytes_read=s, kernel="tree") == \
        math.ceil(max(fabric, 2 * nic)) + 2 * (g - 1) * ALPHA + 2 * math.ceil(math.log2(k)) * NET_ALPHA


def test_an_spmd_op_runs_on_its_groups_first_device_and_others_on_their_own(tmp_path):
    machine = node(tmp_path, 4)
    gemm = dict(kind="gemm", m=64, n=64, k=64, src="weights", bytes_read=8192, dst="act", bytes_written=8192)
    ops = [dict(op_id=0, stream="a", **gemm), dict(op_id=1, device="2", stream="b", **gemm),
           dict(op_id=2, device="0", stream="c", **gemm)]
    rec = hwsim.simulate(machine, Trace.from_ops(ops)).records.set_index("op_id")
    assert rec.loc[0, "component"] == "d0.tensor" and rec.loc[1, "component"] == "d2.tensor"
    assert rec.loc[1, "end_cycle"] == rec.loc[0, "end_cycle"]           # another device: no queue
    assert rec.loc[2, "component"] == "d0.tensor"   # device 0's unit, shared with the SPMD op


@pytest.mark.parametrize(("op", "message"), [
    (dict(kind="all_reduce", bytes_read=64, device="0-9"), "column 'device': '0-9' names device 9"),
    (dict(kind="all_reduce", bytes_read=64, device="x"), "column 'device': 'x' is not a device set"),
    (dict(kind="all_reduce", bytes_read=64, device="1"), "needs a group of at least 2 devices"),
    (dict(kind="send", bytes_read=64, device="1"), "column 'peer'"),
    (dict(kind="all_gather", bytes_read=64, kernel="nvls"), "all_gather does not run as 'nvls'"),
    (dict(kind="all_reduce", bytes_read=64, kernel="star"), "'star' is not a collective algorithm"),
    (dict(kind="all_reduce", bytes_read=0), "needs bytes_read > 0"),
])
def test_bad_collectives_are_one_error_naming_the_row(tmp_path, op, message):
    with pytest.raises(TraceError, match="row 1 .*" + message.replace("(", r"\(").replace(")", r"\)")):
        one(node(tmp_path, 4), **op)


def test_a_collective_on_one_device_says_it_needs_several(tmp_path):
    with pytest.raises(TraceError, match="needs a machine of several devices"):
        one(hwsim.load_arch("tiny"), kind="all_reduce", bytes_read=64)


KINDS = st.sampled_from(["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast", "gemm", "send"])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(KINDS, st.integers(1, 64), st.integers(0, 2), st.sampled_from(["", "0-1", "2-3", "1"])),
                min_size=1, max_size=12))
def test_the_roofline_is_a_lower_bound_of_the_event_replay(tmp_path_factory, ops):
    machine = node(tmp_path_factory.mktemp("m"), 4)
    rows = []
    for i, (kind, size, stream, device) in enumerate(ops):
        row = dict(op_id=i, kind=kind, stream=f"s{stream}", device=device, bytes_read=size * 256)
        if kind == "gemm":
            row.update(m=64, n=64, k=64, src="weights", dst="act", bytes_written=8192)
        elif kind == "send":
            row.update(device="1", peer=3)
        elif device == "1":
            row["device"] = "0-1"
        rows.append(row)
    trace = Trace.from_ops(rows)
    event = hwsim.simulate(machine, trace).summary["total_cycles"]
    roofline = hwsim.simulate(machine, trace, fidelity="roofline").summary["total_cycles"]
    assert roofline <= event


def test_exposed_communication_is_what_no_compute_overlaps(tmp_path):
    machine, s = node(tmp_path, 4), 256 * 1024
    gemm = dict(kind="gemm", m=256, n=256, k=256, src="weights", bytes_read=1024, dst="act", bytes_written=1024)
    ops = [dict(op_id=0, stream="compute", **gemm), dict(op_id=1, stream="comm", kind="all_reduce",
                                                         bytes_read=s, kernel="ring")]
    result = hwsim.simulate(machine, Trace.from_ops(ops))
    rec = result.records.set_index("op_id")
    compute, comm = int(rec.loc[0, "end_cycle"]), int(rec.loc[1, "end_cycle"])
    assert rec.loc[0, "start_cycle"] == rec.loc[1, "start_cycle"] == 0 and comm > compute
    block = result.summary["communication"]
    assert block["compute_seconds"] == compute / 1e9 and block["communication_seconds"] == comm / 1e9
    assert block["exposed_communication_seconds"] == (comm - compute) / 1e9
    single = hwsim.simulate(hwsim.load_arch("tiny"), Trace.from_ops([dict(op_id=0, **gemm)])).summary
    assert "communication" not in single     # single-device summaries keep their keys


def test_a_collective_is_drawn_on_its_busiest_port_and_the_roofline_has_the_fabric(tmp_path):
    from hwsim.reports.roofline import bandwidth_ceilings

    machine = node(tmp_path, 4)
    result = hwsim.simulate(machine, Trace.from_ops([dict(op_id=0, kind="send", device="2", peer=1, bytes_read=64)]))
    assert result.records["component"].tolist() == ["nvlink:d1.rx"]   # busiest port, first on ties
    assert result.records["bytes_nvlink:d1.rx"].tolist() == [64]
    ceilings = bandwidth_ceilings(result.machine)
    assert "nvlink" in set(ceilings["resource"]) and "d1.hbm" not in set(ceilings["resource"])


PCIE = """
name: tiny-pcie
extends: tiny
devices: 4
components:
  p2p:
    kind: fabric
    topology: host
    bandwidth: 8 GB/s
    host_bandwidth: 16 GB/s
    latency: 100 ns
    source: "[A] round test value"
"""


def test_through_the_host_every_byte_sent_also_crosses_the_node_bridge(tmp_path):
    path = tmp_path / "pcie.yaml"
    path.write_text(PCIE)
    machine, n, s = hwsim.load_arch(path), 4, 4096
    host = 16   # bytes per cycle of the bridge, shared by every device's sends
    assert one(machine, kind="send", device="0", peer=1, bytes_read=s) == max(s // B, s // host) + ALPHA
    ring = 2 * (n - 1) * s // n
    assert one(machine, kind="all_reduce", bytes_read=s, kernel="ring") == \
        max(ring // B, n * ring // host) + 2 * (n - 1) * ALPHA
    with pytest.raises(TraceError, match="no in-switch reduction"):
        one(machine, kind="all_reduce", bytes_read=s, kernel="nvls")


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nextends: tiny\ndevices: 2\n", "devices: 2 devices need a component of kind 'fabric'"),
    ("name: x\nextends: tiny\ndevices: 2\ncomponents:\n  f: {kind: fabric, bandwidth: 1 GB/s, topology: host}\n",
     "host_bandwidth: a fabric through the host needs host_bandwidth > 0"),
    ("name: x\nextends: tiny\ndevices: 2\ncomponents:\n  f: {kind: fabric, bandwidth: 1 GB/s, efficiency: {star: 0.5}}\n",
     "efficiency.star: not an algorithm"),
    ("name: x\nextends: tiny\ndevices: 2\nnodes: 2\ncomponents:\n  f: {kind: fabric, bandwidth: 1 GB/s}\n",
     "nodes: 2 nodes need a component of kind 'network'"),
])
def test_a_bad_node_machine_is_one_error_naming_the_key(tmp_path, text, message):
    from hwsim.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        hwsim.load_arch(path)
