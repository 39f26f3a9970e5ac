"""Objective section of the config (owned by ``imvae_jax.losses``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Which recipe of terms, and its weights (paper 3.4.5; defaults from the authors' run script)."""

    recipe: str = "imvae"
    reconstruction: Literal["bce", "softmax"] = "bce"
    lambda_t: float = 1e-3
    lambda_a: float = 5e-3
    adaptive_a: float = 0.8
    adaptive_b: float = 0.8
    discriminator_weight: float = 0.1  # authors variant only
