"""The prepared CDSR dataset: one Parquet file per split, its Arrow schema and its validation.

A dataset is a folder with ``train.parquet``, ``valid.parquet``, ``test.parquet`` (and the
``audit.json`` report). One row is one prediction task (user, target domain):

=================  ====================  ============================================================
column             type                  meaning
=================  ====================  ============================================================
user_id            int64                 contiguous user index (source id in ``meta["user_ids"]``)
seq_x, seq_y       list<int32>           history per domain, oldest first, ids 1..n_items_<d>; the
                                         target is not included; 0 (padding) is never stored
target_domain      int8                  0 = X, 1 = Y
target_item        int32                 1..n_items_<target domain>
overlap            bool                  history in both domains in the source (before cold-start cuts)
cold_start         bool                  no history in the target domain
cold_start_kind    int8                  0 = not cold-start, 1 = other domain present, 2 = no history
tailed             bool                  target-domain length (history + target) <= the split's
                                         tail threshold
target_in_train    bool, optional        valid/test: the same user has a training row whose same-domain
                                         list (history or target) holds this row's target
pseudo_x, pseudo_y list<int32>, optional recalled items, descending score, never in the history
negatives          list<int32>, optional valid/test: fixed seeded negatives of the target domain,
                                         excluding history and target (same length on every row)
=================  ====================  ============================================================

Schema metadata key ``b"imvae"`` holds JSON (see :data:`META_KEYS`). Every read validates the
columns and raises :class:`DatasetError` naming the file, the row and the column.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_VERSION = 1
META_FIELD = b"imvae"
SPLITS = ("train", "valid", "test")
DOMAINS = ("x", "y")

ITEM_LIST = pa.list_(pa.int32())
REQUIRED_COLUMNS: dict[str, pa.DataType] = {
    "user_id": pa.int64(),
    "seq_x": ITEM_LIST,
    "seq_y": ITEM_LIST,
    "target_domain": pa.int8(),
    "target_item": pa.int32(),
    "overlap": pa.bool_(),
    "cold_start": pa.bool_(),
    "cold_start_kind": pa.int8(),
    "tailed": pa.bool_(),
}
OPTIONAL_COLUMNS: dict[str, pa.DataType] = {
    "target_in_train": pa.bool_(),
    "pseudo_x": ITEM_LIST,
    "pseudo_y": ITEM_LIST,
    "negatives": ITEM_LIST,
}
COLUMNS = {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}
META_KEYS = (
    "format_version",
    "split",
    "n_items_x",
    "n_items_y",
    "item_ids_x",
    "item_ids_y",
    "user_ids",
    "tail_threshold_x",
    "tail_threshold_y",
    "build",
    "source",
    "fingerprint",
    "pseudo",
    "negatives_seed",
)


class DatasetError(ValueError):
    """A prepared split or a source file that breaks the contract; the message names where."""


def where(path: str | os.PathLike | None, row: int | None = None, column: str | None = None) -> str:
    """``file F, row R, column C`` for error messages (rows are 0-based data rows)."""
    parts = [f"file {path}" if path is not None else "table"]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# list columns as (offsets, values)


def list_arrays(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A list<int32> column as ``(offsets int64[R+1] starting at 0, values int32[N])``.

    Nulls count as empty lists (validation rejects them in stored splits).
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if isinstance(column, pa.ChunkedArray):  # an empty chunked array
        column = pa.array([], type=column.type)
    offsets = np.asarray(column.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = column.values.to_numpy(zero_copy_only=False)
    start, stop = int(offsets[0]), int(offsets[-1])
    values = np.asarray(values[start:stop], dtype=np.int32)
    return offsets - start, values


def lists_to_arrow(offsets: np.ndarray, values: np.ndarray) -> pa.ListArray:
    """``(offsets [R+1], values [N])`` as a list<int32> Arrow array."""
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.size == 0:
        offsets = np.zeros(1, np.int64)
    if offsets[-1] > np.iinfo(np.int32).max:
        raise DatasetError(f"a list column holds {offsets[-1]} values, more than list<int32> allows")
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32), pa.int32()), pa.array(np.asarray(values, dtype=np.int32), pa.int32())
    )


# ---------------------------------------------------------------------------------------------
# fingerprint


def content_fingerprint(table: pa.Table, meta: Mapping[str, Any]) -> str:
    """sha256 over the columns (name-sorted, chunking-independent) and the id spaces in ``meta``."""
    digest = hashlib.sha256()
    for name in sorted(table.column_names):
        column = table.column(name)
        kind = f"list<{column.type.value_type}>" if pa.types.is_list(column.type) else str(column.type)
        digest.update(name.encode() + b"\0" + kind.encode() + b"\0")
        if pa.types.is_list(column.type):
            offsets, values = list_arrays(column)
            digest.update(offsets.tobytes())
            digest.update(values.tobytes())
        else:
            array = column.to_numpy()
            digest.update(np.ascontiguousarray(array).tobytes())
    ids = {k: meta.get(k) for k in ("n_items_x", "n_items_y", "item_ids_x", "item_ids_y", "user_ids")}
    digest.update(json.dumps(ids, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Split


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a prepared dataset: an Arrow table and its metadata.

    ``table``: the columns above. ``meta``: the JSON metadata (``META_KEYS``). ``name``: the split.
    """

    table: pa.Table
    meta: dict
    name: str

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def n_items(self) -> tuple[int, int]:
        """``(n_items_x, n_items_y)``."""
        return int(self.meta["n_items_x"]), int(self.meta["n_items_y"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    def column(self, name: str) -> np.ndarray:
        """A flat column as a numpy array ``[R]``."""
        return self.table.column(name).to_numpy()

    def column_lists(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A list column as ``(offsets int64[R+1], values int32[N])``, offsets starting at 0."""
        return list_arrays(self.table.column(name))

    def with_columns(self, columns: Mapping[str, pa.Array], meta_update: Mapping[str, Any] | None = None) -> "Split":
        """A new Split with ``columns`` added or replaced, ``meta`` updated, fingerprint recomputed."""
        table = self.table
        for name, array in columns.items():
            if name not in COLUMNS:
                raise DatasetError(f"split {self.name!r}: unknown column {name!r}; known: {sorted(COLUMNS)}")
            if isinstance(array, np.ndarray):
                array = pa.array(array, type=COLUMNS[name])
            if len(array) != table.num_rows:
                raise DatasetError(
                    f"split {self.name!r}, column {name!r}: {len(array)} values for {table.num_rows} rows"
                )
            if array.type != COLUMNS[name]:
                array = array.cast(COLUMNS[name])
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
        return make_split(table, {**self.meta, **dict(meta_update or {})}, self.name)

    def select_rows(self, rows: np.ndarray) -> "Split":
        """A new Split holding ``rows`` (int indices) in that order; fingerprint recomputed."""
        return make_split(self.table.take(pa.array(np.asarray(rows, dtype=np.int64))), dict(self.meta), self.name)


def order_columns(table: pa.Table) -> pa.Table:
    """The contract's column order (required first, then optional), types cast to the contract."""
    names = [n for n in COLUMNS if n in table.column_names]
    extra = sorted(set(table.column_names) - set(COLUMNS))
    if extra:
        raise DatasetError(f"unknown column(s) {extra}; known: {sorted(COLUMNS)}")
    arrays = []
    for name in names:
        column = table.column(name)
        if column.type != COLUMNS[name]:
            column = column.cast(COLUMNS[name])
        arrays.append(column)
    return pa.table(dict(zip(names, arrays)))


def make_split(table: pa.Table, meta: Mapping[str, Any], name: str) -> Split:
    """A Split with contract column order, ``meta`` completed (version, split, fingerprint)."""
    table = order_columns(table.replace_schema_metadata(None))
    meta = dict(meta)
    meta["format_version"] = FORMAT_VERSION
    meta["split"] = name
    meta.setdefault("pseudo", None)
    meta.setdefault("negatives_seed", None)
    meta["fingerprint"] = content_fingerprint(table, meta)
    return Split(table=table, meta=meta, name=name)


# ---------------------------------------------------------------------------------------------
# validation


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _row_of_value(offsets: np.ndarray, index: int) -> int:
    """The row whose list holds value position ``index``."""
    return int(np.searchsorted(offsets, index, side="right") - 1)


def _member_of_rows(
    query_rows: np.ndarray, query_items: np.ndarray, set_rows: np.ndarray, set_items: np.ndarray, width: int
) -> np.ndarray:
    """For each (row, item) query, whether the same pair is in the set. Vectorised, [Q] bool."""
    from imvae_jax.data.ragged import isin_pairs, pair_keys

    return isin_pairs(query_rows, query_items, np.sort(pair_keys(set_rows, set_items, width)), width)


def validate(split: Split, path: str | os.PathLike | None = None) -> None:
    """Check a split against the contract; raise :class:`DatasetError` naming file, row, column."""
    table, meta = split.table, split.meta
    for name in COLUMNS:
        if name not in table.column_names:
            if name in REQUIRED_COLUMNS:
                raise DatasetError(f"{where(path, column=name)}: required column is missing")
            continue
        column = table.column(name)
        if column.type != COLUMNS[name]:
            raise DatasetError(
                f"{where(path, column=name)}: wrong type {column.type}, expected {COLUMNS[name]}"
            )
        if column.null_count:
            row = _first(np.asarray(column.is_null().to_numpy(zero_copy_only=False)))
            raise DatasetError(f"{where(path, row, name)}: null value")
        if pa.types.is_list(column.type):
            values = pa.chunked_array([c.flatten() for c in column.chunks], pa.int32()) if column.num_chunks else None
            if values is not None and values.null_count:
                offsets, _ = list_arrays(column)
                flat_null = np.concatenate([c.is_null().to_numpy(zero_copy_only=False) for c in values.chunks])
                raise DatasetError(f"{where(path, _row_of_value(offsets, _first(flat_null)), name)}: null item id")
    extra = sorted(set(table.column_names) - set(COLUMNS))
    if extra:
        raise DatasetError(f"{where(path)}: unknown column(s) {extra}")
    for key in ("n_items_x", "n_items_y", "item_ids_x", "item_ids_y", "user_ids"):
        if key not in meta:
            raise DatasetError(f"{where(path)}: metadata key {key!r} is missing")
    n_items = (int(meta["n_items_x"]), int(meta["n_items_y"]))
    for d, dom in enumerate(DOMAINS):
        if len(meta[f"item_ids_{dom}"]) != n_items[d] + 1:
            raise DatasetError(
                f"{where(path)}: metadata item_ids_{dom} has {len(meta[f'item_ids_{dom}'])} entries, "
                f"expected n_items_{dom} + 1 = {n_items[d] + 1}"
            )
    n_rows = table.num_rows
    user = split.column("user_id")
    bad = (user < 0) | (user >= len(meta["user_ids"]))
    if bad.any():
        r = _first(bad)
        raise DatasetError(f"{where(path, r, 'user_id')}: {user[r]} outside 0..{len(meta['user_ids']) - 1}")
    domain = split.column("target_domain").astype(np.int64)
    bad = (domain != 0) & (domain != 1)
    if bad.any():
        r = _first(bad)
        raise DatasetError(f"{where(path, r, 'target_domain')}: {domain[r]} is neither 0 (X) nor 1 (Y)")
    n_target = np.where(domain == 0, n_items[0], n_items[1])
    target = split.column("target_item").astype(np.int64)
    bad = target == 0
    if bad.any():
        r = _first(bad)
        raise DatasetError(f"{where(path, r, 'target_item')}: the target is the padding id 0")
    bad = (target < 0) | (target > n_target)
    if bad.any():
        r = _first(bad)
        raise DatasetError(
            f"{where(path, r, 'target_item')}: {target[r]} outside 1..{n_target[r]} "
            f"(domain {'XY'[domain[r]]})"
        )
    lists = {}
    for d, dom in enumerate(DOMAINS):
        offsets, values = split.column_lists(f"seq_{dom}")
        bad = (values < 1) | (values > n_items[d])
        if bad.any():
            i = _first(bad)
            what = "the padding id 0 is stored" if values[i] == 0 else f"{values[i]} outside 1..{n_items[d]}"
            raise DatasetError(f"{where(path, _row_of_value(offsets, i), f'seq_{dom}')}: {what}")
        lists[d] = (offsets, values)
    lengths = np.stack([np.diff(lists[0][0]), np.diff(lists[1][0])], axis=1)  # [R, 2]
    rows = np.arange(n_rows)
    target_len = lengths[rows, domain] if n_rows else np.zeros(0, np.int64)
    other_len = lengths[rows, 1 - domain] if n_rows else np.zeros(0, np.int64)
    cold = split.column("cold_start").astype(bool)
    kind = split.column("cold_start_kind").astype(np.int64)
    bad = cold != (target_len == 0)
    if bad.any():
        r = _first(bad)
        col = f"seq_{DOMAINS[domain[r]]}"
        if cold[r]:
            raise DatasetError(f"{where(path, r, col)}: cold-start row holds a target-domain history")
        raise DatasetError(f"{where(path, r, col)}: empty target-domain history on a row not marked cold_start")
    expected_kind = np.where(~cold, 0, np.where(other_len > 0, 1, 2))
    bad = kind != expected_kind
    if bad.any():
        r = _first(bad)
        raise DatasetError(
            f"{where(path, r, 'cold_start_kind')}: {kind[r]}, expected {expected_kind[r]} "
            "(0 = not cold-start, 1 = other domain present, 2 = no history)"
        )
    # the target never inside its own domain's history
    for d, dom in enumerate(DOMAINS):
        offsets, values = lists[d]
        value_rows = np.repeat(rows, np.diff(offsets))
        hit = (domain[value_rows] == d) & (values == target[value_rows])
        if hit.any():
            r = int(value_rows[_first(hit)])
            raise DatasetError(f"{where(path, r, f'seq_{dom}')}: the history holds the target {target[r]}")
    # pseudo-sequences: in range, never in the history. The target MAY be recalled: a recall
    # model does not know the target, and excluding it (as the authors' files do) leaks the label.
    for d, dom in enumerate(DOMAINS):
        name = f"pseudo_{dom}"
        if name not in table.column_names:
            continue
        offsets, values = split.column_lists(name)
        bad = (values < 1) | (values > n_items[d])
        if bad.any():
            i = _first(bad)
            raise DatasetError(f"{where(path, _row_of_value(offsets, i), name)}: {values[i]} outside 1..{n_items[d]}")
        value_rows = np.repeat(rows, np.diff(offsets))
        hist_off, hist_val = lists[d]
        hist_rows = np.repeat(rows, np.diff(hist_off))
        bad = _member_of_rows(value_rows, values, hist_rows, hist_val, n_items[d] + 1)
        if bad.any():
            i = _first(bad)
            raise DatasetError(
                f"{where(path, int(value_rows[i]), name)}: recalled item {values[i]} is in the history"
            )
    if "negatives" in table.column_names:
        _validate_negatives(split, path, lists, domain, target, n_target, rows)


def _validate_negatives(split, path, lists, domain, target, n_target, rows) -> None:
    offsets, values = split.column_lists("negatives")
    lengths = np.diff(offsets)
    if lengths.size and (lengths != lengths[0]).any():
        r = _first(lengths != lengths[0])
        raise DatasetError(f"{where(path, r, 'negatives')}: {lengths[r]} negatives, row 0 has {lengths[0]}")
    if lengths.size and lengths[0] == 0:
        raise DatasetError(f"{where(path, 0, 'negatives')}: empty negatives list")
    value_rows = np.repeat(rows, lengths)
    bad = (values < 1) | (values > n_target[value_rows])
    if bad.any():
        i = _first(bad)
        raise DatasetError(
            f"{where(path, int(value_rows[i]), 'negatives')}: {values[i]} outside 1..{n_target[value_rows[i]]}"
        )
    bad = values == target[value_rows]
    width = int(max(n_target.max(initial=0), 1)) + 1
    for d in (0, 1):
        hist_off, hist_val = lists[d]
        hist_rows = np.repeat(rows, np.diff(hist_off))
        keep = domain[hist_rows] == d
        in_hist = _member_of_rows(value_rows, values, hist_rows[keep], hist_val[keep], width)
        bad |= in_hist & (domain[value_rows] == d)
    if bad.any():
        i = _first(bad)
        raise DatasetError(
            f"{where(path, int(value_rows[i]), 'negatives')}: negative {values[i]} is in the history or the target"
        )
    # duplicates within a row
    k = int(lengths[0]) if lengths.size else 0
    if k:
        grid = np.sort(values.reshape(-1, k), axis=1)
        dup = (grid[:, 1:] == grid[:, :-1]).any(axis=1)
        if dup.any():
            raise DatasetError(f"{where(path, _first(dup), 'negatives')}: a negative occurs twice")


# ---------------------------------------------------------------------------------------------
# reading and writing


def _meta_of(schema: pa.Schema, path) -> dict:
    raw = (schema.metadata or {}).get(META_FIELD)
    if raw is None:
        raise DatasetError(f"{where(path)}: no {META_FIELD.decode()!r} metadata; not a prepared split")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{where(path)}: unreadable {META_FIELD.decode()!r} metadata: {e}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{where(path)}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    return meta


def read_split(path: str | os.PathLike, check: bool = True) -> Split:
    """Read and validate one split file. ``check=False`` skips the (vectorised) content checks."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{where(path)}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(f"{where(path)}: not a readable Parquet file: {e}") from None
    meta = _meta_of(table.schema, path)
    table = table.replace_schema_metadata(None)
    split = Split(table=table, meta=meta, name=str(meta.get("split", path.stem)))
    if check:
        validate(split, path)
        fingerprint = content_fingerprint(table, meta)
        if fingerprint != meta.get("fingerprint"):
            raise DatasetError(
                f"{where(path)}: content fingerprint {fingerprint[:12]} does not match the stored "
                f"{str(meta.get('fingerprint'))[:12]}; the file was changed after it was written"
            )
    return split


def read_dataset(folder: str | os.PathLike, check: bool = True) -> dict[str, Split]:
    """``{"train", "valid", "test"} -> Split`` from a prepared dataset folder (all three required)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder}: not found")
    splits = {name: read_split(folder / f"{name}.parquet", check=check) for name in SPLITS}
    ids = {name: (s.meta["n_items_x"], s.meta["n_items_y"], len(s.meta["user_ids"])) for name, s in splits.items()}
    if len(set(ids.values())) != 1:
        raise DatasetError(f"dataset folder {folder}: splits disagree on (n_items_x, n_items_y, users): {ids}")
    return splits


def write_split(split: Split, path: str | os.PathLike, check: bool = True) -> None:
    """Write one split (validated first unless ``check=False``); atomic via a temporary file."""
    path = Path(path)
    if check:
        validate(split, path)
    table = split.table.replace_schema_metadata({META_FIELD: json.dumps(split.meta, default=_json_default).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_dataset(
    splits: Mapping[str, Split],
    folder: str | os.PathLike,
    audit: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write train/valid/test (+ ``audit.json``) into a temporary folder, then rename it to ``folder``.

    A failure leaves no half-written dataset. An existing folder is replaced only if ``overwrite``.
    """
    folder = Path(folder)
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise DatasetError(f"dataset {folder}: missing split(s) {missing}")
    if folder.exists() and not overwrite:
        raise DatasetError(f"dataset {folder}: already exists (pass overwrite=True to replace it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name in SPLITS:
            write_split(splits[name], tmp / f"{name}.parquet")
        if audit is not None:
            (tmp / "audit.json").write_text(json.dumps(audit, indent=2, default=_json_default) + "\n")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
