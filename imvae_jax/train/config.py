"""Training section of the config (owned by ``imvae_jax.train``)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule of epochs, checkpoints and the run folder."""

    seed: int = 0
    batch_size: int = 512
    epochs: int = 100
    learning_rate: float = 8e-4
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0  # 0: no clipping
    eval_every: int = 1
    patience: int = 0  # 0: no early stopping
    run_dir: str = "runs/default"
    max_steps_per_epoch: int = 0  # 0: the whole split
