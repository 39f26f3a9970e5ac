"""Readers: the authors' CSV files and raw per-domain ratings files, into the prepared format.

**Authors' CSV** (``user_id,seq_d1,seq_d2,domain_id[,corr_d1,corr_d2]``, an optional unnamed
index column, an ignored ``ob_label``; see ``shared/data/README.md``): a row is one prediction
task whose target is the last item of the target-domain list. An item is a (domain, id) pair: an
id found in both columns is an item of each catalogue (mixed and offset id layouts alike). One id
map per domain (sorted source ids -> 1..n) and one user map serve every split. ``corr_*`` become
``pseudo_*`` in the same ids. The files hold train and test only: :func:`build_authors` carves a
seeded validation split of *users* out of train (``valid_fraction``) and gives it cold-start rows
by the test file's protocol, measured on the test file: the share of overlapping rows cut to
cold-start (kind 1) and the share of single-domain rows cut to no history (kind 2, the artefact of
the authors' script). The test file's rows are kept as they are.

**Raw ratings** (``user,item,rating,timestamp``, Amazon 2014 layout, header optional, gzip
optional, one file per domain): ratings below ``min_rating`` dropped, optional iterative k-core
per domain (users and items with at least k ratings), chronological sequences (ties keep file
order), then the paper's protocol (:func:`imvae_jax.data.build.build_protocol`).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from imvae_jax.data import ragged
from imvae_jax.data.build import (
    STREAM_COLD,
    STREAM_VALID,
    Rows,
    Sequences,
    base_meta,
    build_protocol,
    finish,
    rng_for,
    rows_from_lists,
    tail_threshold,
)
from imvae_jax.data.config import DataConfig
from imvae_jax.data.ragged import Ragged
from imvae_jax.data.schema import DatasetError, Split

AUTHORS_REQUIRED = ("user_id", "seq_d1", "seq_d2", "domain_id")
AUTHORS_OPTIONAL = ("corr_d1", "corr_d2", "ob_label", "")


def _at(path, row: int | None = None, column: str | None = None) -> str:
    """``file F, row R (line L), column C``; rows are 0-based data rows, lines 1-based with header."""
    parts = [f"file {path}"]
    if row is not None:
        parts.append(f"row {row} (line {row + 2})")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """A text stream over a plain or gzipped file (detected by its magic bytes)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"file {path}: not found")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# authors' CSV


@dataclasses.dataclass(frozen=True)
class AuthorsFile:
    """One authors' CSV as parsed (source ids). Lists include the target, as in the file."""

    path: str
    columns: list[str]
    user: np.ndarray  # int64 [R]
    seq_d1: Ragged  # [R] source ids
    seq_d2: Ragged
    domain: np.ndarray  # int8 [R]
    corr_d1: Ragged | None = None
    corr_d2: Ragged | None = None

    def __len__(self) -> int:
        return len(self.user)


def _parse_int(text: str, path, row: int, column: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"{_at(path, row, column)}: {text!r} is not an integer") from None


def _parse_list(text: str, path, row: int, column: str) -> list[int]:
    cell = text.strip()
    if len(cell) < 2 or cell[0] != "[" or cell[-1] != "]":
        raise DatasetError(f"{_at(path, row, column)}: {text[:40]!r} is not a list like [1, 2, 3]")
    inner = cell[1:-1].strip()
    if not inner:
        return []
    out = []
    for token in inner.split(","):
        try:
            value = int(token)
        except ValueError:
            raise DatasetError(f"{_at(path, row, column)}: item {token.strip()!r} is not an integer") from None
        if value < 0:
            raise DatasetError(f"{_at(path, row, column)}: negative item id {value}")
        out.append(value)
    return out


def read_authors_csv(path: str | os.PathLike) -> AuthorsFile:
    """Parse one authors' CSV; malformed cells raise :class:`DatasetError` naming file, row, column."""
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"file {path}: empty file, expected a header {','.join(AUTHORS_REQUIRED)}") from None
        except (UnicodeDecodeError, OSError, csv.Error) as e:
            raise DatasetError(f"file {path}: unreadable: {e}") from None
        missing = [c for c in AUTHORS_REQUIRED if c not in header]
        if missing:
            raise DatasetError(f"file {path}: header {header} lacks column(s) {missing}")
        unknown = [c for c in header if c not in AUTHORS_REQUIRED + AUTHORS_OPTIONAL]
        if unknown:
            raise DatasetError(f"file {path}: unknown column(s) {unknown}")
        if ("corr_d1" in header) != ("corr_d2" in header):
            raise DatasetError(f"file {path}: corr_d1 and corr_d2 must come together")
        index = {c: header.index(c) for c in header}
        has_corr = "corr_d1" in header
        users, domains = [], []
        lists: dict[str, list[list[int]]] = {c: [] for c in ("seq_d1", "seq_d2", "corr_d1", "corr_d2")}
        try:
            for row, cells in enumerate(reader):
                if len(cells) != len(header):
                    raise DatasetError(f"{_at(path, row)}: {len(cells)} fields, the header has {len(header)}")
                users.append(_parse_int(cells[index["user_id"]], path, row, "user_id"))
                domain = _parse_int(cells[index["domain_id"]], path, row, "domain_id")
                if domain not in (0, 1):
                    raise DatasetError(f"{_at(path, row, 'domain_id')}: {domain} is neither 0 (X) nor 1 (Y)")
                domains.append(domain)
                for column in ("seq_d1", "seq_d2") + (("corr_d1", "corr_d2") if has_corr else ()):
                    lists[column].append(_parse_list(cells[index[column]], path, row, column))
                target_column = "seq_d1" if domain == 0 else "seq_d2"
                if not lists[target_column][-1]:
                    raise DatasetError(
                        f"{_at(path, row, target_column)}: the target-domain list is empty (domain_id {domain})"
                    )
        except (UnicodeDecodeError, csv.Error) as e:
            raise DatasetError(f"file {path}: unreadable near data row {len(users)}: {e}") from None
    if not users:
        raise DatasetError(f"file {path}: no data rows")
    return AuthorsFile(
        path=str(path),
        columns=header,
        user=np.asarray(users, np.int64),
        seq_d1=ragged.from_lists(lists["seq_d1"]),
        seq_d2=ragged.from_lists(lists["seq_d2"]),
        domain=np.asarray(domains, np.int8),
        corr_d1=ragged.from_lists(lists["corr_d1"]) if has_corr else None,
        corr_d2=ragged.from_lists(lists["corr_d2"]) if has_corr else None,
    )


def file_stats(f: AuthorsFile) -> dict[str, Any]:
    """The statistics of ``shared/data/stats.json`` (definitions in the data README) for one file."""
    l1, l2 = ragged.lengths(f.seq_d1), ragged.lengths(f.seq_d2)
    target_len = np.where(f.domain == 0, l1, l2)
    other_len = np.where(f.domain == 0, l2, l1)
    users, counts = np.unique(f.user, return_counts=True)
    both = (l1 > 0) & (l2 > 0)
    ids_1, ids_2 = np.unique(f.seq_d1[1]), np.unique(f.seq_d2[1])
    all_ids = np.concatenate([f.seq_d1[1], f.seq_d2[1]])

    def share_lt5(x: np.ndarray) -> float:
        return round(100.0 * float((x < 5).mean()), 2) if x.size else 0.0

    def mean(x: np.ndarray) -> float:
        return round(float(x.mean()), 2) if x.size else 0.0

    nonempty1, nonempty2 = l1[l1 > 0], l2[l2 > 0]
    return {
        "rows": len(f),
        "users": int(users.size),
        "users_with_two_rows": int((counts > 1).sum()),
        "rows_target_d1": int((f.domain == 0).sum()),
        "rows_target_d2": int((f.domain == 1).sum()),
        "users_with_d1": int(np.unique(f.user[l1 > 0]).size),
        "users_with_d2": int(np.unique(f.user[l2 > 0]).size),
        "overlapping_users": int(np.unique(f.user[both]).size),
        "overlap_rows": int(both.sum()),
        "items_d1": int(ids_1.size),
        "items_d2": int(ids_2.size),
        "ids_in_both_columns": int(np.intersect1d(ids_1, ids_2).size),
        "id_min": int(all_ids.min()),
        "id_max": int(all_ids.max()),
        "interactions_d1_rows": int(l1.sum()),
        "interactions_d2_rows": int(l2.sum()),
        "len_d1_mean": mean(nonempty1),
        "len_d1_median": float(np.median(nonempty1)),
        "len_d1_lt5": share_lt5(nonempty1),
        "len_d2_mean": mean(nonempty2),
        "len_d2_median": float(np.median(nonempty2)),
        "len_d2_lt5": share_lt5(nonempty2),
        "target_len_mean": mean(target_len),
        "target_len_median": float(np.median(target_len)),
        "target_len_lt5": share_lt5(target_len),
        "target_len_min": int(target_len.min()),
        "cold_start_rows": int(((target_len == 1) & (other_len > 0)).sum()),
        "no_history_rows": int(((target_len == 1) & (other_len == 0)).sum()),
        "tail_len_d1": tail_threshold(l1),
        "tail_len_d2": tail_threshold(l2),
    }


def _id_map(*arrays: np.ndarray) -> np.ndarray:
    """Sorted distinct source ids; contiguous id = position + 1."""
    return np.unique(np.concatenate([np.asarray(a, np.int64) for a in arrays]))


def _map_ids(lst: Ragged, ids: np.ndarray) -> Ragged:
    return lst[0], (np.searchsorted(ids, lst[1]) + 1).astype(np.int32)


def _authors_rows(f: AuthorsFile, user_ids: np.ndarray, ids_x: np.ndarray, ids_y: np.ndarray) -> tuple[Rows, int]:
    """Rows of one file in our ids; pseudo items that are in the history or the target are dropped."""
    user = np.searchsorted(user_ids, f.user)
    pseudo: dict[str, Ragged] = {}
    if f.corr_d1 is not None:
        pseudo = {"pseudo_x": _map_ids(f.corr_d1, ids_x), "pseudo_y": _map_ids(f.corr_d2, ids_y)}
    rows = rows_from_lists(user, _map_ids(f.seq_d1, ids_x), _map_ids(f.seq_d2, ids_y), f.domain, **pseudo)
    dropped = 0
    if pseudo:
        cleaned = {}
        for d, name in enumerate(("pseudo_x", "pseudo_y")):
            lst = pseudo[name]
            rows_of = ragged.row_ids(lst)
            width = int(max(ids_x.size, ids_y.size)) + 2
            history = rows.history(d)
            keys = np.unique(ragged.pair_keys(ragged.row_ids(history), history[1], width))
            bad = ragged.isin_pairs(rows_of, lst[1], keys, width)
            bad |= (rows.target_domain[rows_of] == d) & (lst[1] == rows.target_item[rows_of])
            dropped += int(bad.sum())
            cleaned[name] = ragged.compress(lst, ~bad)
        rows = dataclasses.replace(rows, **cleaned)
    return rows, dropped


def _cold_start_like(test: Rows, valid: Rows, rng: np.random.Generator) -> tuple[Rows, dict[str, Any]]:
    """Cut valid rows to cold-start with the shares measured on the test rows (kinds 1 and 2)."""
    target_hist = ragged.lengths(test.target_history())
    test_o, test_s = test.overlap, ~test.overlap
    share_1 = float((test_o & (target_hist == 0)).sum() / max(test_o.sum(), 1))
    share_2 = float((test_s & (target_hist == 0)).sum() / max(test_s.sum(), 1))
    mask = np.zeros(len(valid), bool)
    counts = {}
    for name, pool, share in (("other_domain", valid.overlap, share_1), ("no_history", ~valid.overlap, share_2)):
        candidates = np.flatnonzero(pool & (ragged.lengths(valid.target_history()) > 0))
        count = int(round(share * candidates.size))
        mask[rng.choice(candidates, size=count, replace=False)] = True
        counts[name] = count
    info = {"share_overlap_rows_cold_start": share_1, "share_single_rows_no_history": share_2, "valid_rows_cut": counts}
    return valid.make_cold_start(mask), info


def _drop_leaky(train: Rows, others: list[Rows], width: int) -> tuple[Rows, int]:
    """Drop training rows whose same-domain list holds a valid/test target of the same user."""
    eval_keys = np.unique(
        np.concatenate([(o.user * 2 + o.target_domain) * width + o.target_item for o in others]).astype(np.int64)
    )
    hit = np.isin((train.user * 2 + train.target_domain) * width + train.target_item, eval_keys)
    for d, seq in ((0, train.seq_x), (1, train.seq_y)):
        rows = ragged.row_ids(seq)
        element = np.isin((train.user[rows] * 2 + d) * width + seq[1], eval_keys)
        hit |= np.bincount(rows[element], minlength=len(train)) > 0
    return train.mask(~hit), int(hit.sum())


def build_authors(cfg: DataConfig, progress: Callable[[str], None] | None = None) -> dict[str, Split]:
    """The authors' train/test CSVs (``cfg.train_path``, ``cfg.test_path``) -> train/valid/test."""
    step = progress or (lambda _name: None)
    if not cfg.train_path or not cfg.test_path:
        raise DatasetError("source 'authors' needs data.train_path and data.test_path")
    step("read train")
    train_file = read_authors_csv(cfg.train_path)
    step("read test")
    test_file = read_authors_csv(cfg.test_path)
    files = (train_file, test_file)
    ids_x = _id_map(*[f.seq_d1[1] for f in files], *[f.corr_d1[1] for f in files if f.corr_d1 is not None])
    ids_y = _id_map(*[f.seq_d2[1] for f in files], *[f.corr_d2[1] for f in files if f.corr_d2 is not None])
    user_ids = np.unique(np.concatenate([f.user for f in files]))
    step("rows")
    train, dropped_train = _authors_rows(train_file, user_ids, ids_x, ids_y)
    test, dropped_test = _authors_rows(test_file, user_ids, ids_x, ids_y)

    step("carve valid")
    rng = rng_for(cfg.seed, STREAM_VALID)
    train_users = np.unique(train.user)
    valid_users = rng.choice(train_users, size=int(round(cfg.valid_fraction * train_users.size)), replace=False)
    in_valid = np.isin(train.user, valid_users)
    valid, train = train.mask(in_valid), train.mask(~in_valid)
    cold_info: dict[str, Any] = {"mode": cfg.valid_cold_start}
    if cfg.valid_cold_start == "like_test":
        valid, info = _cold_start_like(test, valid, rng_for(cfg.seed, STREAM_COLD))
        cold_info.update(info)
    leaky_dropped = 0
    if cfg.drop_leaky_train_rows:
        train, leaky_dropped = _drop_leaky(train, [valid, test], int(max(ids_x.size, ids_y.size)) + 1)
    source = {
        "kind": "authors",
        "train": str(cfg.train_path),
        "test": str(cfg.test_path),
        "train_sha256": file_sha256(cfg.train_path),
        "test_sha256": file_sha256(cfg.test_path),
        "file_stats": {"train": file_stats(train_file), "test": file_stats(test_file)},
        "valid_users": int(valid_users.size),
        "valid_cold_start": cold_info,
        "pseudo_items_dropped": {"train": dropped_train, "test": dropped_test},
        "leaky_train_rows_dropped": leaky_dropped,
    }
    meta = base_meta(user_ids.tolist(), [None, *ids_x.tolist()], [None, *ids_y.tolist()], cfg, source)
    return finish({"train": train, "valid": valid, "test": test}, meta, (ids_x.size, ids_y.size), cfg, step)


# ---------------------------------------------------------------------------------------------
# raw ratings


@dataclasses.dataclass(frozen=True)
class Ratings:
    """One domain's ratings file: ``[N]`` each, in file order."""

    path: str
    user: np.ndarray  # str
    item: np.ndarray  # str
    rating: np.ndarray  # float64
    timestamp: np.ndarray  # int64


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _parse_time(text: str) -> int | None:
    """An integer time stamp (``1400000000`` or ``1400000000.0``), else None."""
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        return int(value) if value.is_integer() else None


def read_ratings(path: str | os.PathLike) -> Ratings:
    """``user,item,rating,timestamp`` lines (header optional, gzip optional); errors name the row.

    Arrow's CSV reader parses well-formed files fast; any file it rejects (or whose ids it would read
    as missing) is read again line by line to name the offending row and column.
    """
    fast = _read_ratings_arrow(path)
    return fast if fast is not None else _read_ratings_python(path)


def _read_ratings_arrow(path: str | os.PathLike) -> Ratings | None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open_text(path) as f:
        first = f.readline()
    cells = next(csv.reader([first]), [])
    header = len(cells) >= 4 and not _is_number(cells[2]) and not _is_number(cells[3])
    names = ["user", "item", "rating", "timestamp"]
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        stream = pa.input_stream(str(path), compression="gzip" if compressed else None)
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0),
            convert_options=pacsv.ConvertOptions(
                column_types={"user": pa.string(), "item": pa.string(), "rating": pa.float64(), "timestamp": pa.int64()},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return None
    if table.num_rows == 0 or any(table.column(c).null_count for c in names):
        return None
    user, item = (np.asarray(table.column(c).to_numpy(zero_copy_only=False)).astype(str) for c in ("user", "item"))
    if (np.char.str_len(np.char.strip(user)) == 0).any() or (np.char.str_len(np.char.strip(item)) == 0).any():
        return None
    return Ratings(
        path=str(path),
        user=np.char.strip(user),
        item=np.char.strip(item),
        rating=table.column("rating").to_numpy(),
        timestamp=table.column("timestamp").to_numpy(),
    )


def _read_ratings_python(path: str | os.PathLike) -> Ratings:
    users, items, ratings, times = [], [], [], []
    names = ("user", "item", "rating", "timestamp")
    with open_text(path) as f:
        reader = csv.reader(f)
        first_data_row = 0
        try:
            for line, cells in enumerate(reader):
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if line == 0 and len(cells) >= 4 and not _is_number(cells[2]) and not _is_number(cells[3]):
                    first_data_row = 1  # a header
                    continue
                row = line - first_data_row
                where = f"file {path}, row {row} (line {line + 1})"
                if len(cells) != 4:
                    raise DatasetError(f"{where}: {len(cells)} fields, expected 4 (user,item,rating,timestamp)")
                user, item, rating, stamp = (c.strip() for c in cells)
                for name, value in (("user", user), ("item", item)):
                    if not value:
                        raise DatasetError(f"{where}, column {name!r}: empty")
                try:
                    rating_value = float(rating)
                except ValueError:
                    raise DatasetError(f"{where}, column 'rating': {rating!r} is not a number") from None
                time_value = _parse_time(stamp)
                if time_value is None:
                    raise DatasetError(f"{where}, column 'timestamp': {stamp!r} is not an integer time")
                users.append(user)
                items.append(item)
                ratings.append(rating_value)
                times.append(time_value)
        except (UnicodeDecodeError, csv.Error) as e:
            raise DatasetError(f"file {path}: unreadable near line {len(users) + 1}: {e}") from None
    if not users:
        raise DatasetError(f"file {path}: no ratings ({', '.join(names)})")
    return Ratings(
        path=str(path),
        user=np.asarray(users, dtype=object).astype(str),
        item=np.asarray(items, dtype=object).astype(str),
        rating=np.asarray(ratings, np.float64),
        timestamp=np.asarray(times, np.int64),
    )


def k_core(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
    """``[N]`` bool: the interactions left when users and items with < k interactions are removed
    repeatedly until none is left (iterative k-core of one domain)."""
    keep = np.ones(user.size, bool)
    if k <= 1:
        return keep
    _, u = np.unique(user, return_inverse=True)
    _, i = np.unique(item, return_inverse=True)
    while True:
        cu = np.bincount(u[keep], minlength=u.max() + 1)
        ci = np.bincount(i[keep], minlength=i.max() + 1)
        new = keep & (cu[u] >= k) & (ci[i] >= k)
        if new.sum() == keep.sum():
            return new
        keep = new


def ratings_to_sequences(x: Ratings, y: Ratings, cfg: DataConfig) -> Sequences:
    """Filter (``min_rating``, ``k_core``), then chronological per-user sequences of both domains."""
    kept = []
    for r in (x, y):
        keep = r.rating >= cfg.min_rating
        core = k_core(r.user[keep], r.item[keep], cfg.k_core)
        index = np.flatnonzero(keep)[core]
        if index.size == 0:
            raise DatasetError(f"file {r.path}: no rating left after min_rating={cfg.min_rating}, k_core={cfg.k_core}")
        kept.append(index)
    user_ids = np.unique(np.concatenate([x.user[kept[0]], y.user[kept[1]]]))
    out: dict[str, Any] = {}
    item_maps = []
    for dom, r, index in (("x", x, kept[0]), ("y", y, kept[1])):
        user = np.searchsorted(user_ids, r.user[index])
        items, item_index = np.unique(r.item[index], return_inverse=True)
        order = np.lexsort((index, r.timestamp[index], user))  # user, then time, then file order
        counts = np.bincount(user, minlength=user_ids.size)
        out[dom] = (ragged.from_lengths(counts), (item_index[order] + 1).astype(np.int32))
        out[f"times_{dom}"] = r.timestamp[index][order]
        item_maps.append([None, *items.tolist()])
    return Sequences(user_ids=user_ids.tolist(), item_ids_x=item_maps[0], item_ids_y=item_maps[1], **out)


def build_ratings(cfg: DataConfig, progress: Callable[[str], None] | None = None) -> dict[str, Split]:
    """Two raw ratings files (``cfg.ratings_x``, ``cfg.ratings_y``) -> train/valid/test."""
    step = progress or (lambda _name: None)
    if not cfg.ratings_x or not cfg.ratings_y:
        raise DatasetError("source 'ratings' needs data.ratings_x and data.ratings_y")
    step("read X")
    x = read_ratings(cfg.ratings_x)
    step("read Y")
    y = read_ratings(cfg.ratings_y)
    step("sequences")
    seqs = ratings_to_sequences(x, y, cfg)
    source = {
        "kind": "ratings",
        "ratings_x": str(cfg.ratings_x),
        "ratings_y": str(cfg.ratings_y),
        "sha256_x": file_sha256(cfg.ratings_x),
        "sha256_y": file_sha256(cfg.ratings_y),
        "ratings": {"x": int(x.user.size), "y": int(y.user.size)},
    }
    return build_protocol(seqs, cfg, source, step)
