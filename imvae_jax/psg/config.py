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
    eval_every: int = 10
    patience: int = 5  # evaluations without improvement of Recall@20 before stopping
    top_k: int = 20  # T'
    user_chunk: int = 1024
    seed: int = 2020
