"""Pseudo-sequence generator section of the config (owned by ``imvae_jax.psg``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class PSGConfig:
    """LightGCN + top-T' recall. Defaults follow the LightGCN reference implementation."""

    mode: Literal["lightgcn", "random"] = "lightgcn"
    dim: int = 64
    layers: int = 3
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 2048
    epochs: int = 1000
    valid_fraction: float = 0.2
    eval_every: int = 10  # epochs between Recall@20/NDCG@20 evaluations on the held-out 20%
    patience: int = 5  # evaluations without improvement of Recall@20 before stopping
    top_k: int = 20  # T'
    user_chunk: int = 1024  # users scored at once in recall and evaluation (memory bound)
    seed: int = 2020
    # graph edges: every row's histories (all splits); "histories+train_targets" adds the train rows'
    # targets, which then sit in 98% of train rows' own pseudo lists vs ~10% of test rows' (a
    # train/test mismatch the model can exploit), so the default leaves them out
    graph: Literal["histories", "histories+train_targets"] = "histories"
    # also remove the row's own target from its pseudo lists (the authors' recall did; it uses the
    # label of valid/test rows, so it leaks; off by default)
    exclude_target: bool = False
