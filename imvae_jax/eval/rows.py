"""Evaluation rows for model-free scorers: from the authors' CSV files or a prepared split.

:class:`EvalRows` is a minimal, columnar view of prediction tasks (one row = user x target
domain): ragged per-domain histories, the target, and the group columns. It lets the
baselines run straight on the authors' files (``data/README.md``), independently of the
dataset builder, and on a prepared :class:`imvae_jax.data.schema.Split` alike.

Authors' CSV semantics (``reference/authors_code_spec.md`` 1.4, 1.5): the target is the last
item of the target-domain list; earlier copies of it are dropped from the history; the
other list is kept whole. Ids are shifted by +1 so that 0 is padding (the files use 0 as a
real item). Both domains keep the files' joint id space. ``tailed`` uses the threshold the
authors compute on each file (per column, over lists longer than 2: the floored mean of
the shortest 80 %), with ``<=``.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class EvalRows:
    """Prediction tasks as flat arrays. ``R`` rows; ids ``>= 1`` (0 = padding).

    history_offsets[d]: int64 ``[R+1]``, history_values[d]: int32 — domain d's history of
    each row, oldest first, target excluded. tailed / cold_start_kind: the group columns;
    target_in_train: optional bool ``[R]``.
    """

    name: str
    user_id: np.ndarray
    history_offsets: tuple[np.ndarray, np.ndarray]
    history_values: tuple[np.ndarray, np.ndarray]
    target_domain: np.ndarray
    target_item: np.ndarray
    tailed: np.ndarray
    cold_start_kind: np.ndarray
    target_in_train: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.target_item.shape[0])

    def history(self, domain: int, row: int) -> np.ndarray:
        """Domain ``domain``'s history of row ``row``, oldest first."""
        offsets = self.history_offsets[domain]
        return self.history_values[domain][offsets[row]:offsets[row + 1]]

    def lengths(self, domain: int) -> np.ndarray:
        """History length of every row in ``domain``, int64 ``[R]``."""
        return np.diff(self.history_offsets[domain])

    def target_history_lengths(self) -> np.ndarray:
        """Length of each row's target-domain history, ``[R]``."""
        return np.where(self.target_domain == 0, self.lengths(0), self.lengths(1))

    def column_items(self, domain: int) -> np.ndarray:
        """Distinct ids seen in domain ``domain``'s column: every history plus that domain's targets."""
        targets = self.target_item[self.target_domain == domain]
        return np.unique(np.concatenate([self.history_values[domain], targets]))

    def domain_lists(self, domain: int, with_targets: bool = True) -> list[np.ndarray]:
        """Each row's full list in ``domain`` (history, then the target when it is this domain's)."""
        out = []
        for row in range(len(self)):
            items = self.history(domain, row)
            if with_targets and self.target_domain[row] == domain:
                items = np.append(items, self.target_item[row])
            out.append(items)
        return out

    def group_columns(self) -> dict[str, np.ndarray]:
        """The columns :func:`imvae_jax.eval.groups.group_masks` reads."""
        columns = {
            "tailed": self.tailed,
            "cold_start_kind": self.cold_start_kind,
            "cold_start": self.cold_start_kind > 0,
        }
        if self.target_in_train is not None:
            columns["target_in_train"] = self.target_in_train
        return columns

    def as_batch(self, candidates: np.ndarray, max_len: int = 20) -> dict[str, np.ndarray]:
        """A batch dict in the data layer's layout (``seq_x``, ``seq_y`` left-padded, ``candidates``...)."""
        if candidates.shape[0] != len(self):
            raise ValueError(f"{self.name}: {candidates.shape[0]} candidate rows for {len(self)} rows")
        batch: dict[str, np.ndarray] = {}
        for domain, key in enumerate(("x", "y")):
            seq = np.zeros((len(self), max_len), np.int32)
            for row in range(len(self)):
                items = self.history(domain, row)[-max_len:]
                if items.size:
                    seq[row, max_len - items.size:] = items
            batch[f"seq_{key}"] = seq
            batch[f"len_{key}"] = np.minimum(self.lengths(domain), max_len).astype(np.int32)
        batch["target_domain"] = self.target_domain.astype(np.int32)
        batch["candidates"] = candidates.astype(np.int32)
        batch["mask"] = np.ones(len(self), np.float32)
        batch.update({k: np.asarray(v) for k, v in self.group_columns().items()})
        return batch


def _ragged(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(lists) + 1, np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    values = np.fromiter((v for x in lists for v in x), dtype=np.int32, count=int(offsets[-1]))
    return offsets, values


def authors_tail_threshold(lengths: Sequence[int]) -> int:
    """The authors' per-column tailed threshold: over lengths > 2, drop the longest 20 %, floor the mean."""
    kept = sorted((n for n in lengths if n > 2), reverse=True)
    kept = kept[int(0.2 * len(kept)):]
    if not kept:
        return 0
    return int(np.floor(np.mean(kept)))


def _parse_list(text: str, path: Path, line: int, column: str) -> list[int]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {line}, column {column!r}: not a JSON list ({e.msg}): {text[:60]!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ValueError(f"{path}: line {line}, column {column!r}: expected a list of ids >= 0, got {text[:60]!r}")
    return value


def read_authors_csv(path: str | Path) -> EvalRows:
    """The authors' ``user_id,seq_d1,seq_d2,domain_id`` CSV (optionally gzipped) as :class:`EvalRows`."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    users, full_lists, domains = [], ([], []), []
    with opener(path, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"user_id", "seq_d1", "seq_d2", "domain_id"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: header lacks column(s) {sorted(missing)}")
        for line, record in enumerate(reader, start=2):
            lists = [_parse_list(record[c], path, line, c) for c in ("seq_d1", "seq_d2")]
            if record["domain_id"] not in ("0", "1"):
                raise ValueError(f"{path}: line {line}, column 'domain_id': expected 0 or 1, got {record['domain_id']!r}")
            domain = int(record["domain_id"])
            if not lists[domain]:
                raise ValueError(f"{path}: line {line}: target list seq_d{domain + 1} is empty")
            try:
                users.append(int(record["user_id"]))
            except ValueError:
                raise ValueError(f"{path}: line {line}, column 'user_id': {record['user_id']!r}") from None
            full_lists[0].append(lists[0])
            full_lists[1].append(lists[1])
            domains.append(domain)
    thresholds = [authors_tail_threshold([len(x) for x in col]) for col in full_lists]
    histories: tuple[list[list[int]], list[list[int]]] = ([], [])
    targets, tailed, kinds = [], [], []
    for row, domain in enumerate(domains):
        own, other = full_lists[domain][row], full_lists[1 - domain][row]
        target = own[-1]
        for d in (0, 1):
            items = full_lists[d][row]
            if d == domain:
                items = [v for v in items[:-1] if v != target]
            histories[d].append([v + 1 for v in items])
        targets.append(target + 1)
        tailed.append(len(own) <= thresholds[domain])
        kinds.append(0 if len(own) > 1 else (1 if other else 2))
    hx, hy = _ragged(histories[0]), _ragged(histories[1])
    return EvalRows(
        name=path.name,
        user_id=np.asarray(users, np.int64),
        history_offsets=(hx[0], hy[0]),
        history_values=(hx[1], hy[1]),
        target_domain=np.asarray(domains, np.int8),
        target_item=np.asarray(targets, np.int32),
        tailed=np.asarray(tailed, bool),
        cold_start_kind=np.asarray(kinds, np.int8),
    )


def with_target_in_train(rows: EvalRows, train: EvalRows) -> EvalRows:
    """Mark rows whose target sits in one of the same user's ``train`` lists of the target domain.

    Both row sets must share user and item ids (the authors' train/test files of one folder
    do; ``data/README.md`` caveat 2).
    """
    seen: dict[tuple[int, int], set[int]] = {}
    for domain in (0, 1):
        for row, items in enumerate(train.domain_lists(domain)):
            if items.size:
                seen.setdefault((int(train.user_id[row]), domain), set()).update(items.tolist())
    flags = np.array(
        [
            int(rows.target_item[r]) in seen.get((int(rows.user_id[r]), int(rows.target_domain[r])), ())
            for r in range(len(rows))
        ],
        dtype=bool,
    )
    return dataclasses.replace(rows, target_in_train=flags)


def rows_from_split(split: Any) -> EvalRows:
    """A prepared split (``imvae_jax.data.schema.Split``, per the shared contract) as :class:`EvalRows`."""
    table = split.table
    names = set(table.column_names)
    needed = {"user_id", "seq_x", "seq_y", "target_domain", "target_item", "tailed", "cold_start_kind"}
    if needed - names:
        raise ValueError(f"split {split.name!r}: missing column(s) {sorted(needed - names)}")
    ox, vx = split.column_lists("seq_x")
    oy, vy = split.column_lists("seq_y")

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy()

    return EvalRows(
        name=str(split.name),
        user_id=column("user_id").astype(np.int64),
        history_offsets=(np.asarray(ox, np.int64), np.asarray(oy, np.int64)),
        history_values=(np.asarray(vx, np.int32), np.asarray(vy, np.int32)),
        target_domain=column("target_domain").astype(np.int8),
        target_item=column("target_item").astype(np.int32),
        tailed=column("tailed").astype(bool),
        cold_start_kind=column("cold_start_kind").astype(np.int8),
        target_in_train=column("target_in_train").astype(bool) if "target_in_train" in names else None,
    )
