"""Training section of the config (owned by ``imvae_jax.train``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule of epochs, checkpoints and the run folder."""

    seed: int = 0  # model init, dropout/sampling keys (fold_in(step)) and the shuffling of batches
    batch_size: int = 512  # global batch (over all devices and hosts); padded to a multiple of the devices
    # rows per micro-batch: the step sums the exact gradients of batch_size / micro_batch slices
    # (same update, less memory; on CPU faster: slices stay in cache); "auto": 64 on CPU, else all
    micro_batch: Literal["auto"] | int = "auto"
    epochs: int = 100
    learning_rate: float = 8e-4
    weight_decay: float = 0.0  # > 0: AdamW (decoupled decay)
    grad_clip_norm: float = 0.0  # 0: no clipping
    eval_every: int = 1  # validate + checkpoint every this many epochs (and after the last)
    patience: int = 0  # 0: no early stopping; else stop after this many validations without a new best
    run_dir: str = "runs/default"
    max_steps_per_epoch: int = 0  # 0: the whole split
    async_checkpointing: bool = True  # Orbax writes in the background while the next epoch trains
    progress: bool = True  # tqdm progress bars (process 0 only)
