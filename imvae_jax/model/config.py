"""Model section of the config (owned by ``imvae_jax.model``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """IM-VAE architecture. ``variant='paper'`` follows the paper; ``'authors'`` the authors' code."""

    variant: Literal["paper", "authors"] = "paper"
    dim: int = 128  # d
    max_len: int = 20  # T
    pseudo_len: int = 20  # T' (recalled items per domain)
    num_blocks: int = 2
    num_heads: int = 1
    cross_heads: int = 4
    dropout: float = 0.2
    encoder_dropout: float = 0.5
    mlp_hidden: tuple[int, ...] = (32, 64, 32)
    cross_encoder: Literal["attention", "mlp"] = "attention"
    scorer_hidden: int = 32  # authors variant only
    use_cross_domain: bool = True  # False: a single-domain ablation (no z_t latents)
