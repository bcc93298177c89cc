"""Cost signatures: the distinct ops of a trace, as far as the cost model can tell them apart.

Everything the per-op cost model reads (kind, unit, shape and size columns, memory spaces,
dtype, kernel, access pattern) is the op's *signature*. Generated traces repeat a few
thousand signatures millions of times (one GEMM per layer per step), so the engine computes
costs once per signature and hands each op its signature's costs with one gather. Cost
models are element-wise (each op's cost depends on its own row only), so this changes no
number.

:class:`SignatureTable` grows batch by batch: rows are hashed (64-bit, over the signature
columns), matched against the signatures seen so far, and every row is then compared with
its signature's first row, so a hash collision can never merge two different ops (it falls
back to exact grouping). The table and each batch's codes depend on the trace alone and are
reused by every run of an in-memory trace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwsim.trace.columns import OpColumns

#: Trace columns the cost model reads: numbers, then text codes.
SIGNATURE_INTS = ("m", "n", "k", "batch", "elements", "flops", "bytes_read", "bytes_read2", "bytes_written", "peer")
SIGNATURE_TEXT = ("kind", "unit", "src", "src2", "dst", "dtype", "kernel", "access", "device")
#: Batches this small are not deduplicated (hashing would cost more than it saves).
SMALL_BATCH = 16
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(29)


class SignatureTable:
    """Distinct signatures in order of first appearance, with their first row and op id."""

    def __init__(self) -> None:
        self._columns: dict[str, list[np.ndarray]] = {c: [] for c in (*SIGNATURE_INTS, *SIGNATURE_TEXT)}
        self._first_row: list[np.ndarray] = []
        self._first_op: list[np.ndarray] = []
        self._by_hash: dict[int, int] = {}
        self._merged: dict[str, np.ndarray] | None = None
        self.size = 0
        self.vocab = None

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` over all signatures (int64 values or int32 codes)."""
        if self._merged is None:
            self._merged = {c: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
                            for c, parts in self._columns.items()}
            self._merged["first_row"] = np.concatenate(self._first_row) if self._first_row else np.zeros(0, np.int64)
            self._merged["first_op"] = np.concatenate(self._first_op) if self._first_op else np.zeros(0, np.int64)
        return self._merged[name]

    def rows(self, start: int = 0, stop: int | None = None) -> OpColumns:
        """Signatures ``start:stop`` as op columns (what cost models see)."""
        stop = self.size if stop is None else stop
        n = stop - start
        # ``op_id`` is the signature's first op: what an error about the signature names.
        return OpColumns({"op_id": self.column("first_op")[start:stop],
                          **{c: self.column(c)[start:stop] for c in SIGNATURE_INTS}},
                         {c: self.column(c)[start:stop] for c in SIGNATURE_TEXT}, self.vocab,
                         np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def first_row(self, sig: int) -> tuple[int, int]:
        """(0-based trace row, op id) of the first op with signature ``sig``."""
        return int(self.column("first_row")[sig]), int(self.column("first_op")[sig])

    def add(self, ops: OpColumns) -> np.ndarray:
        """The signature of every row of ``ops`` (int64 codes), adding new ones."""
        self.vocab = ops.vocab
        n = len(ops)
        if n <= SMALL_BATCH:
            return self._append(ops, np.arange(n))
        columns = _signature_columns(ops)
        constant = {c: v[0] for c, v in columns.items() if v[0] == v[-1] and (v == v[0]).all()}
        hashes = _row_hashes(columns, constant)
        local, uniques = pd.factorize(hashes)
        first = np.full(len(uniques), n, dtype=np.int64)
        np.minimum.at(first, local, np.arange(n))
        known = np.fromiter((self._by_hash.get(h, -1) for h in uniques.tolist()), dtype=np.int64,
                            count=len(uniques))
        new = np.flatnonzero(known < 0)
        if new.size:
            start = self.size
            self._append(ops, first[new])
            known[new] = start + np.arange(new.size)
            self._by_hash.update(zip(uniques[new].tolist(), known[new].tolist(), strict=True))
        if not self._matches(columns, constant, known, local):
            return self._exact(ops)
        return known[local]

    def _append(self, ops: OpColumns, rows: np.ndarray) -> np.ndarray:
        start = self.size
        for c in SIGNATURE_INTS:
            self._columns[c].append(ops.ints[c][rows])
        for c in SIGNATURE_TEXT:
            self._columns[c].append(ops.codes[c][rows])
        self._first_row.append(ops.first_row + rows.astype(np.int64))
        self._first_op.append(ops.ints["op_id"][rows])
        self.size += len(rows)
        self._merged = None
        return start + np.arange(len(rows), dtype=np.int64)

    def _matches(self, columns: dict[str, np.ndarray], constant: dict[str, object], known: np.ndarray,
                 local: np.ndarray) -> bool:
        """Whether every row equals its signature's first row in every signature column
        (columns constant in the batch are checked once per signature)."""
        for c, values in columns.items():
            if c in constant:
                if not (self.column(c)[known] == constant[c]).all():
                    return False
            elif not np.array_equal(self.column(c)[known][local], values):
                return False
        return True

    def _exact(self, ops: OpColumns) -> np.ndarray:
        """Signatures without hashing (after a collision): group rows by all columns."""
        frame = pd.DataFrame({**{c: ops.ints[c] for c in SIGNATURE_INTS}, **{c: ops.codes[c] for c in SIGNATURE_TEXT}})
        groups = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
        first = np.full(groups.max() + 1, len(ops), dtype=np.int64)
        np.minimum.at(first, groups, np.arange(len(ops)))
        return self._append(ops, first)[groups]


def _signature_columns(ops: OpColumns) -> dict[str, np.ndarray]:
    return {**{c: ops.ints[c] for c in SIGNATURE_INTS}, **{c: ops.codes[c] for c in SIGNATURE_TEXT}}


def _row_hashes(columns: dict[str, np.ndarray], constant: dict[str, object]) -> np.ndarray:
    """A 64-bit hash of each row's signature columns: a sum over columns of a mix of
    (value x a per-column odd constant). Columns constant in the batch add one scalar, so
    the hash of a row does not depend on which batch it is in."""
    n = len(next(iter(columns.values())))
    h = np.zeros(n, dtype=np.uint64)
    salt = np.uint64(0)
    with np.errstate(over="ignore"):
        for i, (c, values) in enumerate(columns.items()):
            key = np.uint64(2 * i + 1) * _MIX
            if c in constant:
                x = np.uint64(int(constant[c]) & 0xFFFFFFFFFFFFFFFF) * key
                salt += (x ^ (x >> _SHIFT)) * _MIX
                continue
            x = values.astype(np.int64, copy=False).view(np.uint64) * key
            x ^= x >> _SHIFT
            x *= _MIX
            h += x
        h += salt
    return h
