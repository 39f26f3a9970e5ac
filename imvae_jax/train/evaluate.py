"""Evaluation of a model state on a valid/test split: ranks in one jitted pass per batch, then
metrics per domain and user group through :mod:`imvae_jax.eval`.

Each row's target and its stored negatives (``negatives`` column, 999 in prepared datasets) are
scored together in eval mode (no dropout, z = mu). Ties count against the target
(``eval.tie_mode='pessimistic'``, the default; ``'authors'`` reproduces their code). With
``full_ranking`` the target is also ranked among every item of its domain, the row's whole
target-domain history masked (not only the last T items).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imvae_jax.train.step import Parallel, make_eval_step

GROUP_COLUMNS = ("tailed", "cold_start", "cold_start_kind", "target_in_train")


def history_matrix(split: Any) -> np.ndarray:
    """Each row's whole target-domain history, ``[R, H]`` int32 right-padded with 0 (H >= 1)."""
    domain = split.column("target_domain").astype(np.int64)
    lists = [split.column_lists(name) for name in ("seq_x", "seq_y")]
    lengths = np.where(domain == 0, np.diff(lists[0][0]), np.diff(lists[1][0]))
    width = max(1, int(lengths.max()) if lengths.size else 1)
    out = np.zeros((len(domain), width), np.int32)
    for d, (offsets, values) in enumerate(lists):
        rows = np.flatnonzero(domain == d)
        counts = np.diff(offsets)[rows]
        row_index = np.repeat(rows, counts)
        column = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        starts = np.repeat(offsets[rows], counts)
        out[row_index, column] = values[starts + column]
    return out


def epoch_metric(result: dict[str, dict[str, dict[str, Any]]], metric: str = "ndcg@10") -> float:
    """The selection score: the mean over domains of the ``all`` group's ``metric`` (the paper's
    "Avg"); domains without rows are left out; -1 if there is none."""
    values = [groups["all"][metric] for groups in result.values() if groups.get("all", {}).get(metric) is not None]
    return float(np.mean(values)) if values else -1.0


class SplitEvaluator:
    """``evaluator(params, rest) -> {"sampled": result, "full": result | None}`` for one split."""

    def __init__(
        self,
        split: Any,
        graphdef: Any,
        parallel: Parallel,
        *,
        batch_size: int,
        max_len: int,
        pseudo_len: int,
        ks: tuple[int, ...],
        tie_mode: str = "pessimistic",
        full_ranking: bool = False,
        chunk_size: int = 4096,
        seed: int = 0,
    ):
        from imvae_jax.data.batches import Batcher

        if "negatives" not in split.table.column_names:
            raise ValueError(f"split {split.name!r} has no 'negatives' column: it cannot be evaluated")
        self.split = split
        self.parallel = parallel
        self.ks = tuple(ks)
        self.tie_mode = tie_mode
        self.full_ranking = full_ranking
        self.batcher = Batcher(split, batch_size, max_len=max_len, pseudo_len=pseudo_len, shuffle=False, seed=seed)
        self.history = history_matrix(split) if full_ranking else None
        names = split.table.column_names
        self.columns = {name: split.column(name) for name in GROUP_COLUMNS if name in names}
        self.step = make_eval_step(
            graphdef, parallel, n_items=split.n_items, tie_mode=tie_mode, full_ranking=full_ranking, chunk_size=chunk_size
        )

    def batches(self):
        for batch in self.batcher.epoch(0):
            if self.history is not None:
                history = self.history[np.maximum(batch["row"], 0)]
                batch["history"] = np.where((batch["mask"] > 0)[:, None], history, 0).astype(np.int32)
            yield batch

    def __call__(self, params: Any, rest: Any, progress: Callable | None = None) -> dict[str, Any]:
        import jax

        from imvae_jax.eval.groups import aggregate, group_masks

        parts: dict[str, list[np.ndarray]] = {}
        pending = None

        def collect(out: dict[str, Any], batch: dict[str, np.ndarray]) -> None:
            out = jax.device_get(out)
            real = batch["mask"] > 0
            n = len(real)
            for name, value in out.items():
                parts.setdefault(name, []).append(np.asarray(value)[:n][real])
            parts.setdefault("row", []).append(batch["row"][real])
            parts.setdefault("domain", []).append(batch["target_domain"][real])

        for batch in self.batches():
            out = self.step(params, rest, self.parallel.put_batch(batch))
            if pending is not None:  # read the previous batch while this one computes
                collect(*pending)
            pending = (out, batch)
            if progress is not None:
                progress(int(batch["mask"].sum()))
        if pending is not None:
            collect(*pending)
        rows = np.concatenate(parts["row"])
        domains = np.concatenate(parts["domain"])
        masks = group_masks({name: value[rows] for name, value in self.columns.items()})
        ranks_all = np.concatenate(parts["ranks_all"]) if "ranks_all" in parts else None
        sampled = aggregate(np.concatenate(parts["ranks"]), domains, masks, ks=self.ks, ranks_all=ranks_all)
        full = None
        if "full_ranks" in parts:
            full = aggregate(np.concatenate(parts["full_ranks"]), domains, masks, ks=self.ks)
        return {"sampled": sampled, "full": full, "rows": int(rows.size)}
