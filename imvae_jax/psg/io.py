"""The authors' LightGCN input files (``lightgcn_{train,test}.txt[.gz]``) and their CSV pseudo-lists.

LightGCN files: one line per user, ``user item item ...`` (whitespace-separated, ids >= 0; a line
may hold only the user). Y items are shifted by a per-dataset constant (+24,506 Cloth-Sport) so
that both domains share one item index space; we keep their ids as they are.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path

import numpy as np

# Y-item shift of the authors' LightGCN files (data/README.md, from hash_table_d2.pkl)
Y_OFFSETS = {"cloth_sport": 24506, "game_video": 29696, "phone_elec": 40714}


class LightGCNFileError(ValueError):
    """A malformed LightGCN or CSV input; the message names the file and line."""


def _open_text(path: Path):
    raw = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8")
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8")


def read_lightgcn(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(users int64[E], items int64[E])`` of a LightGCN ``user item item ...`` file (plain or gzip)."""
    path = Path(path)
    if not path.is_file():
        raise LightGCNFileError(f"file {path}: not found")
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                ids = np.array([int(f) for f in fields], dtype=np.int64)
            except ValueError:
                bad = next(f for f in fields if not f.lstrip("-").isdigit())
                raise LightGCNFileError(f"file {path}, line {number}: {bad!r} is not an integer id") from None
            if (ids < 0).any():
                raise LightGCNFileError(f"file {path}, line {number}: negative id {ids[ids < 0][0]}")
            users.append(np.full(ids.size - 1, ids[0], np.int64))
            items.append(ids[1:])
    if not users:
        raise LightGCNFileError(f"file {path}: no lines")
    return np.concatenate(users), np.concatenate(items)


def find_lightgcn(folder: str | os.PathLike, split: str) -> Path:
    """``folder/lightgcn_<split>.txt[.gz]`` (or ``<split>.txt[.gz]``)."""
    folder = Path(folder)
    for name in (f"lightgcn_{split}.txt.gz", f"lightgcn_{split}.txt", f"{split}.txt.gz", f"{split}.txt"):
        if (folder / name).is_file():
            return folder / name
    raise LightGCNFileError(f"folder {folder}: no lightgcn_{split}.txt[.gz]")


def read_authors_pseudo(path: str | os.PathLike) -> dict[int, tuple[list[int], list[int], list[int], list[int]]]:
    """``user_id -> (seq_d1, seq_d2, corr_d1, corr_d2)`` from the authors' test CSV with ``corr_*``.

    A user with two rows has the same ``corr`` lists in both (checked); the sequences of the last row are kept.
    """
    path = Path(path)
    out: dict[int, tuple[list[int], list[int], list[int], list[int]]] = {}
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = {"user_id", "seq_d1", "seq_d2", "corr_d1", "corr_d2"} - set(reader.fieldnames or [])
        if missing:
            raise LightGCNFileError(f"file {path}: missing column(s) {sorted(missing)}")
        for number, row in enumerate(reader, start=2):
            try:
                user = int(row["user_id"])
                lists = tuple(json.loads(row[c]) for c in ("seq_d1", "seq_d2", "corr_d1", "corr_d2"))
            except (ValueError, json.JSONDecodeError) as e:
                raise LightGCNFileError(f"file {path}, line {number}: unreadable row: {e}") from None
            if user in out and (out[user][2], out[user][3]) != (lists[2], lists[3]):
                raise LightGCNFileError(f"file {path}, line {number}: user {user} has different corr lists in two rows")
            out[user] = lists  # type: ignore[assignment]
    return out
