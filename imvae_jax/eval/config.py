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
