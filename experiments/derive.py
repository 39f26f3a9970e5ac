"""Derived copies of the authors' CSV files: row slices (``--quick``), density ``D_s``, overlap ``K_o``.

The data layer reads the authors' files as they are (``imvae_jax.data.readers``); the paper's
Tables 4 and 5 and the quick modes need changed copies. They are written under the run cache
(``runs/``, git-ignored), never into the repository, with only the four columns
``user_id,seq_d1,seq_d2,domain_id`` (``ob_label`` and ``corr_*`` are dropped).

Every random choice is a function of ``(seed, what)``, so a derived pair is reproducible:

* :func:`slice_users` keeps whole users (all their rows in train *and* test), so twin rows
  and the train/test user overlap (data README caveat 2) survive in the slice.
* :func:`thin_density` keeps each interaction ``(user, domain, item)`` with probability
  ``D_s`` by a hash, so a user's two rows and its train and test rows thin alike; the
  target (last item of the target list) is always kept. Training rows left with nothing
  but their target are dropped (nothing to learn from); test rows are kept, so some become
  cold-start, as the paper's down-sampled test sets do.
* :func:`thin_overlap` keeps the training rows of a share ``K_o`` of the overlapping users
  (users with a row whose two lists are both non-empty) and drops the others' training
  rows; the test file is unchanged (paper 4.5.2).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COLUMNS = ("user_id", "seq_d1", "seq_d2", "domain_id")

# one authors' row: (user, list X, list Y, target domain); lists in file order, target last
Row = tuple[int, list[int], list[int], int]


class DeriveError(ValueError):
    """A derived file cannot be made from its source (names the file, row and column)."""


def read_rows(path: str | Path) -> list[Row]:
    """The four columns of an authors' CSV (plain or gzipped) as rows."""
    path = Path(path)
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DeriveError(f"file {path}: header lacks column(s) {missing}")
    rows: list[Row] = []
    for i, record in enumerate(reader):
        try:
            lists = [json.loads(record[c]) for c in ("seq_d1", "seq_d2")]
            rows.append((int(record["user_id"]), lists[0], lists[1], int(record["domain_id"])))
        except (ValueError, TypeError) as e:
            raise DeriveError(f"file {path}: row {i} (line {i + 2}): {e}") from None
    return rows


def write_rows(rows: Sequence[Row], path: str | Path) -> Path:
    """Write rows as a gzipped authors' CSV (deterministic bytes: no gzip timestamp)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for user, x, y, domain in rows:
        writer.writerow([user, json.dumps(x, separators=(", ", ": ")), json.dumps(y, separators=(", ", ": ")), domain])
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(gzip.compress(out.getvalue().encode(), mtime=0))
    tmp.replace(path)
    return path


def slice_users(train: Sequence[Row], test: Sequence[Row], max_train_rows: int, seed: int) -> tuple[list[Row], list[Row]]:
    """Whole users, in a seeded random order, until the training rows reach ``max_train_rows``."""
    users = np.unique(np.array([r[0] for r in (*train, *test)], np.int64))
    order = np.random.default_rng([seed, 11]).permutation(users)
    per_user: dict[int, int] = {}
    for r in train:
        per_user[r[0]] = per_user.get(r[0], 0) + 1
    kept, count = set(), 0
    for user in order.tolist():
        if count >= max_train_rows:
            break
        kept.add(user)
        count += per_user.get(user, 0)
    return [r for r in train if r[0] in kept], [r for r in test if r[0] in kept]


def _keep(seed: int, user: int, domain: int, item: int, share: float) -> bool:
    digest = hashlib.blake2b(f"{seed}/{user}/{domain}/{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < share


def _thin_row(row: Row, share: float, seed: int) -> Row:
    user, x, y, domain = row
    lists = [x, y]
    out = []
    for d, items in enumerate(lists):
        if d == domain:  # the target (last) always stays
            kept = [v for v in items[:-1] if _keep(seed, user, d, v, share)] + items[-1:]
        else:
            kept = [v for v in items if _keep(seed, user, d, v, share)]
        out.append(kept)
    return (user, out[0], out[1], domain)


def thin_density(
    train: Sequence[Row], test: Sequence[Row], density: float, seed: int
) -> tuple[list[Row], list[Row]]:
    """Keep each interaction with probability ``density`` (targets always); see the module doc."""
    if not 0.0 < density <= 1.0:
        raise DeriveError(f"density must be in (0, 1], got {density}")
    if density == 1.0:
        return list(train), list(test)
    new_train = [_thin_row(r, density, seed) for r in train]
    new_train = [r for r in new_train if len(r[1]) + len(r[2]) > 1]
    return new_train, [_thin_row(r, density, seed) for r in test]


def thin_overlap(train: Sequence[Row], overlap: float, seed: int) -> list[Row]:
    """Drop the training rows of all but a seeded share ``overlap`` of the overlapping users."""
    if not 0.0 <= overlap <= 1.0:
        raise DeriveError(f"overlap ratio must be in [0, 1], got {overlap}")
    overlapping = np.unique(np.array([r[0] for r in train if r[1] and r[2]], np.int64))
    if overlap == 1.0 or overlapping.size == 0:
        return list(train)
    rng = np.random.default_rng([seed, 12])
    kept = set(rng.choice(overlapping, size=int(round(overlap * overlapping.size)), replace=False).tolist())
    dropped = set(overlapping.tolist()) - kept
    return [r for r in train if r[0] not in dropped]
