"""Model section of the config (owned by ``imvae_jax.model``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """IM-VAE architecture. ``variant='paper'`` follows the paper; ``'authors'`` the authors'
    code (spec sections 2-3); ``'sasrec'`` is the single-domain SASRec baseline.

    The per-variant differences are the switches of :func:`imvae_jax.model.imvae.switches_for`.
    """

    variant: Literal["paper", "authors", "sasrec"] = "paper"
    dim: int = 128  # d
    max_len: int = 20  # T (history positions; P_S has T rows)
    pseudo_len: int = 20  # recalled items per domain; the paper's T' = max_len + pseudo_len = 40
    num_blocks: int = 2
    num_heads: int = 1
    cross_heads: int = 4
    dropout: float = 0.2
    encoder_dropout: float = 0.5  # input dropout of the Gaussian MLP encoders
    mlp_hidden: tuple[int, ...] = (32, 64, 32)  # paper variant: encoders, cross heads, decoder
    cross_encoder: Literal["attention", "mlp"] = "attention"
    scorer_hidden: int = 32  # authors variant only (the MLP scorer's hidden width h)
    use_cross_domain: bool = True  # False: a single-domain ablation (no z_t / r latents)
    # paper variant, cold-start rows: "all" masks z^d and z_a^d (paper 3.3.1, Fig. 2); "own" masks
    # z^d only and keeps z_a^d, the latent of the PSG pseudo-sequence recalled for the user
    cold_start_mask: Literal["all", "own"] = "all"
    sasrec_readout: Literal["last", "mean"] = "last"  # sasrec variant: last position or masked mean
