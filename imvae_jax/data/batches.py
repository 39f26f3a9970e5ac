"""From a prepared split's Arrow columns to fixed-shape numpy batches (vectorised, no per-row loop).

Every batch has the same shapes, so a jitted step compiles once; the last partial batch is padded
with ``mask = 0`` rows (``row = -1``, all ids 0), never dropped. Keys, shapes, dtypes:

==================  =================  ===========================================================
``seq_x, seq_y``    [B, T] int32       the last T history items, left-padded with 0, most recent last
``len_x, len_y``    [B] int32          history length clipped to T
``pseudo_x/_y``     [B, T'] int32      the first T' recalled items (0 where absent)
``target_domain``   [B] int32          0 = X, 1 = Y
``candidates``      [B, 1+K] int32     column 0 the target, then K negatives of the target domain
``cold_start``      [B] bool
``cold_start_kind`` [B] int32
``tailed, overlap`` [B] bool
``user_id``         [B] int32
``row``             [B] int32          the row in the split, -1 on padding rows
``mask``            [B] float32        1 real row, 0 padding row
==================  =================  ===========================================================

Negatives: a split with a ``negatives`` column uses its stored ones (K = their count); otherwise
``num_negatives`` are drawn per row uniformly from the target domain's items, excluding the row's
target-domain history and target (with replacement across the K draws). Shuffling and negatives
come from ``numpy.random.default_rng([seed, epoch])``: the same (seed, epoch) gives the same batches.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from imvae_jax.data import ragged
from imvae_jax.data.schema import DatasetError, Split

MAX_REDRAWS = 1000


class _Lists:
    """A list column with a sentinel 0 appended, so out-of-range positions gather the padding id."""

    def __init__(self, offsets: np.ndarray, values: np.ndarray):
        self.offsets = offsets.astype(np.int64)
        self.values = np.concatenate([values.astype(np.int32), np.zeros(1, np.int32)])
        self.sentinel = len(values)

    def last(self, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``([b, width] last items left-padded, [b] clipped lengths)``."""
        end = self.offsets[rows + 1]
        length = np.minimum(end - self.offsets[rows], width)
        j = np.arange(width, dtype=np.int64)[None, :]
        index = end[:, None] - width + j
        index = np.where(j >= (width - length)[:, None], index, self.sentinel)
        return self.values[index], length.astype(np.int32)

    def first(self, rows: np.ndarray, width: int) -> np.ndarray:
        """``[b, width]`` first items, right-padded with 0."""
        start = self.offsets[rows]
        length = self.offsets[rows + 1] - start
        j = np.arange(width, dtype=np.int64)[None, :]
        index = np.where(j < length[:, None], start[:, None] + j, self.sentinel)
        return self.values[index]


class Batcher:
    """Fixed-shape batches over one split; ``len(batcher)`` batches per epoch."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        max_len: int = 20,
        pseudo_len: int = 20,
        num_negatives: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        cold_start_rate: float = 0.0,
    ):
        if not 0.0 <= cold_start_rate <= 1.0:
            raise ValueError(f"cold_start_rate must be in [0, 1], got {cold_start_rate}")
        if batch_size < 1 or max_len < 1 or pseudo_len < 0 or num_negatives < 0:
            raise ValueError(
                f"batch_size ({batch_size}) and max_len ({max_len}) must be >= 1, "
                f"pseudo_len ({pseudo_len}) and num_negatives ({num_negatives}) >= 0"
            )
        self.split = split
        self.batch_size, self.max_len, self.pseudo_len = batch_size, max_len, pseudo_len
        self.shuffle, self.seed, self.cold_start_rate = shuffle, seed, cold_start_rate
        names = split.table.column_names
        self.n_rows = len(split)
        self.n_items = split.n_items
        self.seq = {d: _Lists(*split.column_lists(f"seq_{d}")) for d in ("x", "y")}
        self.pseudo = {d: _Lists(*split.column_lists(f"pseudo_{d}")) if f"pseudo_{d}" in names else None for d in "xy"}
        self.target_domain = split.column("target_domain").astype(np.int32)
        self.target_item = split.column("target_item").astype(np.int32)
        self.flags = {
            "cold_start": split.column("cold_start").astype(bool),
            "cold_start_kind": split.column("cold_start_kind").astype(np.int32),
            "tailed": split.column("tailed").astype(bool),
            "overlap": split.column("overlap").astype(bool),
            "user_id": split.column("user_id").astype(np.int32),
        }
        self.n_target = np.where(self.target_domain == 0, self.n_items[0], self.n_items[1]).astype(np.int64)
        if "negatives" in names:
            offsets, values = split.column_lists("negatives")
            k = int(offsets[1] - offsets[0]) if self.n_rows else 0
            self.negatives = values.reshape(self.n_rows, k)
            self.num_negatives = k
            self._excluded = None
        else:
            self.negatives = None
            self.num_negatives = num_negatives
            self._width = int(max(self.n_items)) + 1
            history = ragged.where(self.target_domain == 0, split.column_lists("seq_x"), split.column_lists("seq_y"))
            rows = ragged.row_ids(history)
            keys = np.concatenate(
                [
                    ragged.pair_keys(rows, history[1], self._width),
                    ragged.pair_keys(np.arange(self.n_rows), self.target_item, self._width),
                ]
            )
            self._excluded = np.unique(keys)
            allowed = self.n_target - np.bincount(self._excluded // self._width, minlength=self.n_rows)
            if num_negatives and (allowed < 1).any():
                r = int(np.flatnonzero(allowed < 1)[0])
                raise DatasetError(f"split {split.name!r}, row {r}: no item of the target domain is left as a negative")

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def epoch(self, epoch: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """The batches of one epoch, deterministic in (seed, epoch)."""
        rng = np.random.default_rng([int(self.seed), int(epoch)])
        order = rng.permutation(self.n_rows) if self.shuffle else np.arange(self.n_rows)
        for start in range(0, self.n_rows, self.batch_size):
            yield self.batch(order[start : start + self.batch_size], rng)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.epoch(0)

    def batch(self, rows: np.ndarray, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """One batch of ``rows`` (at most ``batch_size`` row indices), padded to ``batch_size``."""
        rows = np.asarray(rows, np.int64)
        b, size = rows.size, self.batch_size
        if b > size:
            raise ValueError(f"{b} rows for a batch of {size}")
        real = np.arange(size) < b
        index = np.zeros(size, np.int64)
        index[:b] = rows
        out: dict[str, np.ndarray] = {}
        for d in ("x", "y"):
            seq, length = self.seq[d].last(index, self.max_len)
            out[f"seq_{d}"], out[f"len_{d}"] = seq, length
            pseudo = self.pseudo[d]
            out[f"pseudo_{d}"] = (
                pseudo.first(index, self.pseudo_len) if pseudo is not None else np.zeros((size, self.pseudo_len), np.int32)
            )
        out["target_domain"] = self.target_domain[index]
        candidates = np.empty((size, 1 + self.num_negatives), np.int32)
        candidates[:, 0] = self.target_item[index]
        if self.num_negatives:
            if self.negatives is not None:
                candidates[:, 1:] = self.negatives[index]
            else:
                candidates[:, 1:] = self._draw(index, rng if rng is not None else np.random.default_rng(self.seed))
        out["candidates"] = candidates
        for name, values in self.flags.items():
            out[name] = values[index]
        if self.cold_start_rate:
            self._make_cold_start(out, real, rng if rng is not None else np.random.default_rng(self.seed))
        out["row"] = np.where(real, index, -1).astype(np.int32)
        out["mask"] = real.astype(np.float32)
        if b < size:  # padding rows: every id 0, every flag off
            for name, value in out.items():
                if name not in ("row", "mask"):
                    value[~real] = 0
        return out

    def _make_cold_start(self, out: dict[str, np.ndarray], real: np.ndarray, rng: np.random.Generator) -> None:
        """Training augmentation: a share ``cold_start_rate`` of the rows with history in the other
        domain lose their target-domain history (in place), becoming cold-start rows of kind 1, so
        that the r-encoders also learn through the reconstruction (no training row of the
        published data is cold-start, so otherwise they learn only through lambda_t * KL(q || r))."""
        domain = out["target_domain"]
        other_len = np.where(domain == 0, out["len_y"], out["len_x"])
        cut = real & (other_len > 0) & ~out["cold_start"] & (rng.random(domain.shape[0]) < self.cold_start_rate)
        for d, dom in enumerate(("x", "y")):
            hit = cut & (domain == d)
            out[f"seq_{dom}"][hit] = 0
            out[f"len_{dom}"][hit] = 0
        out["cold_start"] = out["cold_start"] | cut
        out["cold_start_kind"] = np.where(cut, 1, out["cold_start_kind"]).astype(np.int32)

    def _draw(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``[b, K]`` uniform target-domain items, never the row's history or target."""
        n = self.n_target[rows][:, None]
        draws = np.minimum((rng.random((rows.size, self.num_negatives)) * n).astype(np.int64) + 1, n)
        row_grid = np.broadcast_to(rows[:, None], draws.shape)
        bad = ragged.isin_pairs(row_grid, draws, self._excluded, self._width)
        n_all = np.broadcast_to(n, draws.shape)
        for _ in range(MAX_REDRAWS):
            if not bad.any():
                return draws.astype(np.int32)
            n_bad = n_all[bad]
            redraw = np.minimum((rng.random(n_bad.size) * n_bad).astype(np.int64) + 1, n_bad)
            draws[bad] = redraw
            still = np.zeros_like(bad)
            still[bad] = ragged.isin_pairs(row_grid[bad], redraw, self._excluded, self._width)
            bad = still
        raise DatasetError(f"split {self.split.name!r}: could not draw negatives outside the histories")
