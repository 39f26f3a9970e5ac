"""Objective section of the config (owned by ``imvae_jax.losses``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Which recipe of terms, and its weights (paper 3.4.5; defaults from the authors' run script).

    See :mod:`imvae_jax.losses.objective` for the recipes and their terms.
    """

    recipe: str = "imvae"  # a registered recipe: imvae, no_if_ds, no_dn, elbo, reconstruction, authors
    reconstruction: Literal["bce", "softmax"] = "bce"  # paper recipes: Eq. 9 BCE or sampled softmax
    lambda_t: float = 1e-3
    lambda_a: float = 5e-3
    adaptive_a: float = 0.8  # lambda_d = exp(a L / T) - b; a = b = 0 turns the adaptation off (1)
    adaptive_b: float = 0.8
    discriminator_weight: float = 0.1  # authors variant only
    # per-term weight overrides by term name, e.g. {"denoise_x": 0.01}; 0 drops the term.
    # Not hashed (a dict); CLI: loss.weights='{denoise_x: 0.01}'
    weights: dict[str, float] = dataclasses.field(default_factory=dict, hash=False)
    # a term whose model outputs are absent (no cross-domain latents, SASRec): skip it or raise
    on_missing: Literal["skip", "error"] = "skip"
