"""`OpTable`: accumulate trace rows as NumPy column blocks, then build the trace's columns.

Generators describe work as *templates* (one dict of trace columns per operation of a
layer, values either scalars or arrays) expanded over a *grid* (for example passes x
layers). Rows are laid out grid-index-major, template-minor, which is execution order for a
stream: layer 0's ops, then layer 1's, and so on. Op ids are the row numbers, so an id array
returned by :meth:`OpTable.grid` can be used as the ``deps`` of later ops.

Template keys besides trace columns:

* ``deps``: an op id (or array of ids, -1 = none) or a tuple of up to ``MAX_DEPS`` of them;
* ``after``: index (or tuple of indices) of earlier templates of the same grid cell this op
  waits for, added to its ``deps``; an earlier template may also be named by its ``_name``
  (the most recent earlier template of that name);
* ``mask``: a boolean (array) choosing which grid cells really emit this op;
* keys starting with ``_`` are carried for the generator's own use and ignored here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hwsim.trace import COLUMNS, OpColumns, Trace, TraceMeta
from hwsim.trace.columns import CODE_DTYPE, Vocabulary
from hwsim.trace.schema import COLUMN_NAMES, new_vocabulary

MAX_DEPS = 3
_DEFAULTS: dict[str, Any] = {c.name: c.default for c in COLUMNS if c.name not in ("op_id", "deps")}
_DEFAULTS["stream"] = "compute"
_STRING = {c.name for c in COLUMNS if c.dtype == "string"}


class OpTable:
    """Rows of a trace under construction; op ids are assigned in row order starting at 0."""

    def __init__(self) -> None:
        self._blocks: list[tuple[int, dict[str, Any], np.ndarray | None]] = []
        self._rows = 0  # ids handed out (masked-out cells consume ids too)

    def one(self, kind: str, **cols: Any) -> int:
        """Emit a single row and return its op id."""
        return int(self.grid((1,), [dict(kind=kind, **cols)])[0, 0])

    def grid(self, shape: tuple[int, ...], templates: list[dict[str, Any]]) -> np.ndarray:
        """Emit ``templates`` for every cell of ``shape`` (C order); returns ids of shape (*shape, P).

        Ids of cells dropped by a template's ``mask`` are -1.
        """
        n_ops = len(templates)
        cells = math.prod(shape)
        size = cells * n_ops
        if size == 0:
            return np.full((*shape, n_ops), -1, dtype=np.int64)
        full_shape = (*shape, n_ops)
        ids = self._rows + np.arange(size, dtype=np.int64).reshape(full_shape)
        templates = [_resolve_after(t, i, ids) for i, t in enumerate(_named_after(templates))]
        names: dict[str, None] = {}
        for template in templates:
            for name in template:
                if name.startswith("_") or name in ("mask", "after"):
                    continue
                if name != "deps" and name not in _DEFAULTS:
                    raise KeyError(f"template key {name!r} is not a trace column")
                names[name] = None
        block: dict[str, Any] = {}
        for name in names:
            if name == "deps":
                block.update(self._dep_columns(templates, shape))
                continue
            values = [t.get(name, _DEFAULTS[name]) for t in templates]
            block[name] = _expand(values, shape, cells)
        keep = None
        if any("mask" in t for t in templates):
            masks = [np.broadcast_to(np.asarray(t.get("mask", True), dtype=bool), shape) for t in templates]
            keep = np.stack(masks, axis=-1).reshape(-1)
            ids = np.where(keep.reshape(full_shape), ids, -1)
        self._blocks.append((size, block, keep))
        self._rows += size
        return ids

    @staticmethod
    def _dep_columns(templates: list[dict[str, Any]], shape: tuple[int, ...]) -> dict[str, Any]:
        cols: dict[str, list[Any]] = {f"_dep{i}": [] for i in range(MAX_DEPS)}
        for template in templates:
            deps = template.get("deps", ())
            deps = deps if isinstance(deps, tuple | list) else (deps,)
            if len(deps) > MAX_DEPS:
                raise ValueError(f"at most {MAX_DEPS} dependency arrays per op, got {len(deps)}")
            for i in range(MAX_DEPS):
                cols[f"_dep{i}"].append(deps[i] if i < len(deps) else -1)
        cells = math.prod(shape)
        return {name: _expand(values, shape, cells) for name, values in cols.items()}

    def build_columns(self) -> OpColumns:
        """All rows as trace columns: integers as int64 arrays, text as codes, ``deps`` as
        id lists (no text is formatted or parsed on the way to the engine).

        Consumes the table: each column's blocks are released as soon as the column is
        assembled, so peak memory stays near the size of the finished trace.
        """
        if not self._blocks:
            raise ValueError("the op table is empty")
        keep_all = np.concatenate([np.ones(size, dtype=bool) if keep is None else keep
                                   for size, _, keep in self._blocks])
        ints: dict[str, np.ndarray] = {"op_id": np.flatnonzero(keep_all).astype(np.int64)}
        del keep_all
        vocab = new_vocabulary()
        codes: dict[str, np.ndarray] = {}
        deps: list[np.ndarray] = []
        for name in list(_DEFAULTS) + [f"_dep{i}" for i in range(MAX_DEPS)]:
            default = -1 if name.startswith("_dep") else _DEFAULTS[name]
            pieces = []
            for size, block, keep in self._blocks:
                value = block.pop(name, None)
                if value is None:
                    value = _Const(default, size)
                pieces.append(_select(value, keep))
            if name in _STRING:
                codes[name] = _concat_codes(pieces, vocab[name])
            elif name.startswith("_dep"):
                deps.append(_concat(pieces, False))
            else:
                ints[name] = _concat(pieces, False)
        self._blocks.clear()
        offsets, dep_ids = _dep_lists(deps)
        return OpColumns(ints, codes, vocab, offsets, dep_ids)

    def build(self) -> pd.DataFrame:
        """All rows as one DataFrame with trace columns (text as plain ``str`` objects, which
        a generator may still edit; ``deps`` as ';'-joined text)."""
        columns = self.build_columns()
        return pd.DataFrame({name: columns.deps_text() if name == "deps" else
                             pd.Series(columns[name], dtype=object if name in _STRING else None, copy=False)
                             for name in COLUMN_NAMES}, copy=False)

    def to_trace(self, meta: TraceMeta, source: str = "generator") -> Trace:
        """Build and validate the trace."""
        return Trace.from_columns(self.build_columns(), meta, source=source)


_SCALAR_TYPES = (int, float, str, np.integer, np.floating)


def _named_after(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Templates whose ``after`` names earlier templates by their ``_name`` key, with the names
    replaced by those templates' indices (names survive templates inserted in front)."""
    index: dict[str, int] = {}
    out = []
    for i, t in enumerate(templates):
        after = t.get("after")
        if after is not None:
            after = after if isinstance(after, tuple | list) else (after,)
            if any(isinstance(a, str) for a in after):
                missing = [a for a in after if isinstance(a, str) and a not in index]
                if missing:
                    raise ValueError(f"template {i}: 'after' names no earlier template {missing[0]!r}")
                t = dict(t, after=tuple(index[a] if isinstance(a, str) else a for a in after))
        if "_name" in t:
            index[t["_name"]] = i
        out.append(t)
    return out


def _resolve_after(template: dict[str, Any], index: int, ids: np.ndarray) -> dict[str, Any]:
    """Turn a template's ``after`` (earlier templates of the same cell) into ``deps``."""
    if "after" not in template:
        return template
    after = template["after"]
    after = after if isinstance(after, tuple | list) else (after,)
    if any(a >= index for a in after):
        raise ValueError(f"template {index}: 'after' must name earlier templates, got {after}")
    deps = template.get("deps", ())
    deps = tuple(deps) if isinstance(deps, tuple | list) else (deps,)
    return dict(template, deps=deps + tuple(ids[..., a] for a in after))


class _Const:
    """A run of ``size`` equal values (kept unexpanded until :meth:`OpTable.build`)."""

    __slots__ = ("size", "value")

    def __init__(self, value: Any, size: int) -> None:
        self.value = value
        self.size = size


def _select(piece: Any, keep: np.ndarray | None) -> Any:
    """The rows of a block piece that a mask keeps."""
    if keep is None:
        return piece
    if isinstance(piece, _Const):
        return _Const(piece.value, int(keep.sum()))
    return piece[keep]


def _expand(values: list[Any], shape: tuple[int, ...], cells: int) -> Any:
    """One column of a grid block: a constant run, or a flat array in (cell, template) order."""
    if all(isinstance(v, _SCALAR_TYPES) for v in values):
        scalars = [_plain_scalar(v) for v in values]
        if all(s == scalars[0] for s in scalars):
            return _Const(scalars[0], cells * len(values))
        dtype = object if isinstance(scalars[0], str) else np.int64
        return np.tile(np.array(scalars, dtype=dtype), cells)
    arrays = [np.broadcast_to(_as_column_array(v), shape) for v in values]
    dtype = object if any(a.dtype == object or a.dtype.kind == "U" for a in arrays) else np.int64
    return np.stack([a.astype(dtype, copy=False) for a in arrays], axis=-1).reshape(-1)


def _plain_scalar(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return int(round(value)) if isinstance(value, float) else value


def _as_column_array(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    if arr.dtype.kind == "f":
        return np.rint(arr).astype(np.int64)
    return arr


def _concat(pieces: list[Any], is_string: bool) -> np.ndarray:
    dtype = object if is_string else np.int64
    arrays: list[np.ndarray] = []
    run_values: list[Any] = []
    run_sizes: list[int] = []

    def flush() -> None:
        if run_values:
            arrays.append(np.repeat(np.array(run_values, dtype=dtype), run_sizes))
            run_values.clear()
            run_sizes.clear()

    for piece in pieces:
        if isinstance(piece, _Const):
            run_values.append(piece.value)
            run_sizes.append(piece.size)
        else:
            flush()
            arrays.append(piece.astype(dtype, copy=False))
    flush()
    return np.concatenate(arrays)


def _concat_codes(pieces: list[Any], vocab: Vocabulary) -> np.ndarray:
    """One text column's pieces (constant runs or object arrays) as codes over ``vocab``."""
    parts = []
    for piece in pieces:
        if isinstance(piece, _Const):
            parts.append(np.full(piece.size, vocab.code(str(piece.value)), dtype=CODE_DTYPE))
        else:
            local, uniques = pd.factorize(piece.astype(object, copy=False))
            parts.append(vocab.encode([str(u) for u in uniques])[local])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=CODE_DTYPE)


def _dep_lists(dep_cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and ids of each row's dependencies from up to MAX_DEPS id columns (-1 = none;
    an id repeated in a row counts once, first occurrence kept)."""
    deps = np.stack(dep_cols, axis=1)
    keep = deps >= 0
    for j in range(1, deps.shape[1]):
        for i in range(j):
            keep[:, j] &= deps[:, j] != deps[:, i]
    offsets = np.zeros(len(deps) + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return offsets, deps[keep].astype(np.int64)
