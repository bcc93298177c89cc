"""`OpColumns`: a batch of trace rows as NumPy columns, text as integer codes.

Every representation of a trace in hwsim turns into this one at the moment it is read:

* integer columns (shapes, sizes, tags) are ``int64`` arrays;
* text columns (``kind``, ``stream``, memory spaces, ``dtype``, tags, ...) are ``int32`` codes
  into a :class:`Vocabulary` that one trace shares across all its batches, so a code means the
  same value in every batch and nothing downstream hashes strings per op;
* ``deps`` is a CSR pair: ``dep_offsets`` (``n + 1`` positions) into ``dep_ids`` (the op ids
  each row waits for); validation adds ``dep_rows``, the trace row each of them is on.

Cost models read columns by name (``np.asarray(ops["m"])``); a text column then comes back
decoded, as an object array of ``str``, so a model can compare it with a kind name. Views
(:meth:`OpColumns.slice`) share memory with their parent; :meth:`OpColumns.take` copies.
In Parquet the same layout is stored as Arrow dictionary columns and a ``list<int64>``
``deps`` column (:meth:`to_arrow`); :meth:`to_frame` gives pandas (categoricals, ``deps``
as the readable ``"3;7"`` text of CSV traces).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CODE_DTYPE = np.int32


class Vocabulary:
    """The distinct values of one text column, in order of first appearance.

    Codes are positions in :attr:`values`; values are only ever appended, so a code never
    changes meaning once handed out.
    """

    __slots__ = ("_array", "index", "values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}
        self._array: np.ndarray | None = None
        self.encode(list(values))

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"Vocabulary({self.values!r})"

    def code(self, value: str) -> int:
        """The code of ``value``, added if new."""
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.values)
            self.values.append(value)
            self._array = None
        return code

    def find(self, value: str) -> int:
        """The code of ``value``, or -1 when the column has never held it."""
        return self.index.get(value, -1)

    def encode(self, values: list[str]) -> np.ndarray:
        """Codes of ``values`` (distinct values of a batch: a handful, or a record column's
        thousands of dependency texts), new ones added in order."""
        index = self.index
        start = len(self.values)
        if index.keys().isdisjoint(values):   # all new (a batch's dependency texts): no lookups
            fresh = list(dict.fromkeys(values))
            if len(fresh) == len(values):
                index.update(zip(fresh, range(start, start + len(fresh)), strict=True))
                self.values.extend(fresh)
                self._array = None
                return np.arange(start, start + len(fresh), dtype=CODE_DTYPE)
        fresh = list(dict.fromkeys(v for v in values if v not in index))
        if fresh:
            index.update(zip(fresh, range(start, start + len(fresh)), strict=True))
            self.values.extend(fresh)
            self._array = None
        return np.fromiter(map(index.__getitem__, values), dtype=CODE_DTYPE, count=len(values))

    def array(self) -> np.ndarray:
        """The values as an object array (for decoding codes with one gather)."""
        if self._array is None or len(self._array) != len(self.values):
            self._array = np.array(self.values, dtype=object)
        return self._array

    def lookup(self, table: Mapping[str, Any], default: Any, dtype: Any) -> np.ndarray:
        """``table[value]`` for every code (``default`` where absent): a per-code lookup
        array, so ``lookup(...)[codes]`` maps a whole column with one gather."""
        return np.array([table.get(v, default) for v in self.values], dtype=dtype)


class OpColumns:
    """Rows ``first_row .. first_row + len - 1`` (0-based, trace order) of one trace.

    ``ints`` and ``codes`` map column names to arrays of equal length; ``vocab`` maps each
    text column to the vocabulary its codes index. ``dep_rows`` is None until validated.
    """

    __slots__ = ("_decoded", "_deps_factorized", "codes", "dep_ids", "dep_offsets", "dep_rows", "first_row", "ints",
                 "vocab")

    def __init__(self, ints: dict[str, np.ndarray], codes: dict[str, np.ndarray],
                 vocab: dict[str, Vocabulary], dep_offsets: np.ndarray, dep_ids: np.ndarray,
                 dep_rows: np.ndarray | None = None, first_row: int = 0) -> None:
        self.ints = ints
        self.codes = codes
        self.vocab = vocab
        self.dep_offsets = dep_offsets
        self.dep_ids = dep_ids
        self.dep_rows = dep_rows
        self.first_row = first_row
        self._decoded: dict[str, np.ndarray] = {}
        self._deps_factorized: tuple[np.ndarray, list[str]] | None = None

    # -- the mapping cost models read ---------------------------------------------------
    def __len__(self) -> int:
        return len(self.dep_offsets) - 1

    def __contains__(self, name: object) -> bool:
        return name in self.ints or name in self.codes

    def __getitem__(self, name: str) -> np.ndarray:
        """An integer column, or a text column decoded to an object array of ``str``."""
        values = self.ints.get(name)
        if values is not None:
            return values
        if name not in self.codes:
            raise KeyError(name)
        decoded = self._decoded.get(name)
        if decoded is None:
            decoded = self._decoded[name] = self.vocab[name].array()[self.codes[name]]
        return decoded

    def keys(self) -> list[str]:
        return [*self.ints, *self.codes]

    def equals(self, name: str, value: str) -> np.ndarray:
        """``self[name] == value`` for a text column, compared by code (bool array)."""
        code = self.vocab[name].find(value)
        return self.codes[name] == code if code >= 0 else np.zeros(len(self), dtype=bool)

    def factorize(self, name: str) -> tuple[np.ndarray, list[str]]:
        """A text column as (int64 index of each row's value, the distinct values in order
        of first appearance), as ``pd.factorize(self[name])`` gives, from the codes."""
        local, uniques = pd.factorize(self.codes[name])
        values = self.vocab[name].values
        return local, [values[c] for c in uniques.tolist()]

    # -- views and selections -----------------------------------------------------------
    def slice(self, start: int, stop: int) -> OpColumns:
        """Rows ``start:stop`` of this batch as views (no copies)."""
        stop = min(stop, len(self))
        lo, hi = int(self.dep_offsets[start]), int(self.dep_offsets[stop])
        return OpColumns({k: v[start:stop] for k, v in self.ints.items()},
                         {k: v[start:stop] for k, v in self.codes.items()}, self.vocab,
                         self.dep_offsets[start:stop + 1] - lo, self.dep_ids[lo:hi],
                         None if self.dep_rows is None else self.dep_rows[lo:hi],
                         self.first_row + start)

    def take(self, rows: np.ndarray, columns: Iterable[str] | None = None) -> OpColumns:
        """Copies of ``rows`` (without dependencies), optionally only some columns."""
        keep = None if columns is None else set(columns)
        return OpColumns({k: v[rows] for k, v in self.ints.items() if keep is None or k in keep},
                         {k: v[rows] for k, v in self.codes.items() if keep is None or k in keep},
                         self.vocab, np.zeros(len(rows) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def take_lazily(self, rows: np.ndarray) -> OpColumns:
        """:meth:`take` (without dependencies) whose columns are gathered when first read:
        a cost model reads a few of a batch's thirty columns."""
        return OpColumns(_RowsOf(self.ints, rows), _RowsOf(self.codes, rows), self.vocab,
                         np.zeros(len(rows) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def dep_counts(self) -> np.ndarray:
        """Dependencies per row (int64)."""
        return np.diff(self.dep_offsets)

    # -- conversions --------------------------------------------------------------------
    def text(self, name: str) -> pd.Categorical:
        """Text column ``name`` as a pandas categorical over the trace's vocabulary."""
        return pd.Categorical.from_codes(self.codes[name], categories=list(self.vocab[name].values),
                                         validate=False)

    def deps_text(self) -> np.ndarray:
        """``deps`` as CSV writes it: op ids joined by ``;`` ("" for none), an object array."""
        out = np.full(len(self), "", dtype=object)
        counts = self.dep_counts()
        rows = np.flatnonzero(counts)
        if rows.size:
            lists = pa.ListArray.from_arrays(pa.array(self.dep_offsets.astype(np.int64)), pa.array(self.dep_ids))
            joined = pc.binary_join(pc.cast(lists.take(pa.array(rows)), pa.list_(pa.string())), ";")
            out[rows] = joined.to_numpy(zero_copy_only=False)
        return out

    def deps_factorized(self) -> tuple[np.ndarray, list[str]]:
        """:meth:`deps_text` as (int64 index of each row's text, the distinct texts in order
        of first appearance), computed once per set of columns (the records of every run of
        an in-memory trace read it)."""
        if self._deps_factorized is None:
            local, uniques = pd.factorize(self.deps_text())
            self._deps_factorized = (local, list(uniques))
        return self._deps_factorized

    def to_frame(self, names: Iterable[str]) -> pd.DataFrame:
        """The columns ``names`` as a DataFrame (text as categoricals, deps as text)."""
        data: dict[str, Any] = {}
        for name in names:
            if name == "deps":
                data[name] = self.deps_text()
            elif name in self.ints:
                data[name] = self.ints[name]
            else:
                data[name] = self.text(name)
        return pd.DataFrame(data, copy=False)

    def to_arrow(self, names: Iterable[str]) -> pa.Table:
        """The columns ``names`` as an Arrow table: text as dictionary columns over the
        whole vocabulary, ``deps`` as ``list<int64>``."""
        arrays, fields = [], []
        for name in names:
            if name == "deps":
                array = pa.ListArray.from_arrays(pa.array(self.dep_offsets.astype(np.int32)),
                                                 pa.array(self.dep_ids, type=pa.int64()))
            elif name in self.ints:
                array = pa.array(self.ints[name], type=pa.int64())
            else:
                array = pa.DictionaryArray.from_arrays(pa.array(self.codes[name], type=pa.int32()),
                                                       pa.array(self.vocab[name].values, type=pa.string()))
            arrays.append(array)
            fields.append(pa.field(name, array.type, nullable=False))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def concat(batches: list[OpColumns]) -> OpColumns:
    """Batches of one trace (sharing vocabularies) as one, in order."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    ints = {k: np.concatenate([b.ints[k] for b in batches]) for k in first.ints}
    codes = {k: np.concatenate([b.codes[k] for b in batches]) for k in first.codes}
    counts = np.concatenate([b.dep_counts() for b in batches])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    dep_rows = (None if any(b.dep_rows is None for b in batches)
                else np.concatenate([b.dep_rows for b in batches]))
    return OpColumns(ints, codes, first.vocab, offsets, np.concatenate([b.dep_ids for b in batches]),
                     dep_rows, first.first_row)


class _RowsOf(Mapping):
    """The columns of ``source`` (name -> array) at ``rows``, each gathered once, when first read."""

    def __init__(self, source: Mapping[str, np.ndarray], rows: np.ndarray) -> None:
        self._source = source
        self._rows = rows
        self._taken: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        found = self._taken.get(name)
        if found is None:
            found = self._taken[name] = self._source[name][self._rows]
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._source

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)
