"""Evaluation section of the config (owned by ``imvae_jax.eval``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Metrics and protocol. ``report='authors-max'`` reproduces the authors' test-max reporting."""

    ks: tuple[int, ...] = (5, 10, 20)
    batch_size: int = 512
    full_ranking: bool = True
    report: Literal["valid-selected", "authors-max"] = "valid-selected"
    select_metric: str = "ndcg@10"
    # ranking ties: "pessimistic" (ties count against the target) or "authors" (their code:
    # all-users ranks #{neg >= pos - 1e-7}, cold-start/tailed ranks #{neg > pos}); metrics.py
    tie_mode: Literal["pessimistic", "authors"] = "pessimistic"
    full_ranking_chunk: int = 4096  # catalogue columns per block in full-catalogue ranking
    seed_std_ddof: int = 0  # std over seeds: 0 = population std, as the authors' np.std
