"""Sparse channel cells against the dense [signatures, channels] tables they stand for."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.engine.channel_cells import CellsBuilder

SIGS, CHANNELS = 7, 5

contribution = st.tuples(st.integers(0, SIGS - 1), st.integers(0, CHANNELS - 1), st.integers(0, 50),
                         st.integers(0, 50), st.sampled_from([0.0, 0.5, 1.25, 3.0]))


def dense_tables(parts):
    nbytes = np.zeros((SIGS, CHANNELS), dtype=np.int64)
    busy = np.zeros((SIGS, CHANNELS), dtype=np.int64)
    energy = np.zeros((SIGS, CHANNELS))
    for s, c, b, k, e in parts:
        nbytes[s, c] += b
        busy[s, c] += k
        energy[s, c] += e
    return nbytes, busy, energy


@settings(max_examples=200, deadline=None)
@given(st.lists(contribution, max_size=40), st.booleans())
def test_cells_equal_the_dense_tables(parts, as_blocks):
    builder = CellsBuilder(SIGS, CHANNELS)
    for s, c, b, k, e in parts:
        if as_blocks:
            builder.add_block(np.array([s]), np.array([c]), np.array([[b]]), np.array([[k]]), np.array([[e]]))
        else:
            builder.add(np.array([s]), c, b, k, e)
    cells = builder.build()
    nbytes, busy, energy = dense_tables(parts)
    assert np.array_equal(cells.dense("bytes"), nbytes)
    assert np.array_equal(cells.dense("busy"), busy)
    assert np.array_equal(cells.dense("energy"), energy)
    # Exactly the cells with any traffic, sorted by (signature, channel), in CSR rows.
    any_cell = (nbytes != 0) | (busy != 0) | (energy != 0)
    assert len(cells.sig) == int(any_cell.sum())
    keys = cells.sig * CHANNELS + cells.channel
    assert np.all(np.diff(keys) > 0)
    assert np.array_equal(np.diff(cells.offsets), any_cell.sum(axis=1))
    # Row reductions match the dense ones.
    assert np.array_equal(cells.max_busy(), busy.max(axis=1))
    assert np.allclose(cells.energy_sum(), energy.sum(axis=1), rtol=0, atol=1e-12)
    expected = np.where(busy.max(axis=1) > 0, np.argmax(busy, axis=1), -1)
    assert np.array_equal(cells.busiest_channel(), expected)
    offsets, channels, held = cells.held()
    for s in range(SIGS):
        row = busy[s]
        assert channels[offsets[s]:offsets[s + 1]].tolist() == np.flatnonzero(row).tolist()
        assert held[offsets[s]:offsets[s + 1]].tolist() == row[row > 0].tolist()


def test_equal_cells_add_in_the_order_they_came():
    # (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3) in floating point: the order is the dense one.
    builder = CellsBuilder(1, 2)
    for value in (0.1, 0.2, 0.3):
        builder.add(np.array([0]), 1, 1, 1, value)
    cells = builder.build()
    assert cells.energy.tolist() == [(0.1 + 0.2) + 0.3]
    assert cells.bytes.tolist() == [3] and cells.channel.tolist() == [1]


def test_scaled_energy_multiplies_each_signature():
    builder = CellsBuilder(3, 2)
    builder.add(np.array([0, 1, 2]), 0, 1, 1, 2.0)
    builder.add(np.array([2]), 1, 1, 1, 1.0)
    cells = builder.build().scaled_energy(np.array([1.0, 3.0, 8.0]))
    assert cells.dense("energy").tolist() == [[2.0, 0.0], [6.0, 0.0], [16.0, 8.0]]
    assert cells.dense("bytes").tolist() == [[1, 0], [1, 0], [1, 1]]


def test_no_contribution_gives_no_cells():
    cells = CellsBuilder(4, 3).build()
    assert cells.sig.size == 0 and cells.offsets.tolist() == [0, 0, 0, 0, 0]
    assert cells.max_busy().tolist() == [0, 0, 0, 0]
    assert cells.busiest_channel().tolist() == [-1, -1, -1, -1]


def test_merging_cells_of_other_signatures_equals_building_them_together():
    parts = [(0, 1, 5, 2, 1.0), (2, 0, 1, 1, 0.5), (2, 3, 4, 4, 2.0), (3, 1, 7, 0, 0.0)]
    comm = [(1, 4, 9, 9, 3.0), (1, 2, 1, 1, 1.0), (4, 0, 2, 2, 0.5)]
    together, first, second = CellsBuilder(SIGS, CHANNELS), CellsBuilder(SIGS, CHANNELS), CellsBuilder(SIGS, CHANNELS)
    for builder, rows in ((together, parts + comm), (first, parts), (second, comm)):
        for s, c, b, k, e in rows:
            builder.add(np.array([s]), c, b, k, e)
    expected, merged = together.build(), first.build().merged(second.build())
    for name in ("sig", "channel", "bytes", "busy", "energy", "offsets"):
        assert getattr(merged, name).tolist() == getattr(expected, name).tolist()
