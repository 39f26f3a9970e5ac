"""Data section of the config (owned by ``imvae_jax.data``)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from, how the splits are built, and how batches are shaped.

    ``dataset``: a prepared dataset folder (train/valid/test Parquet). When empty, ``source``
    says how ``imvae prepare`` builds one.
    """

    dataset: str = ""
    source: Literal["synthetic", "authors", "ratings"] = "synthetic"
    # authors' CSV layout: train and test files (valid is carved from train)
    train_path: str = ""
    test_path: str = ""
    # raw ratings layout: one file per domain
    ratings_x: str = ""
    ratings_y: str = ""
    seed: int = 0
    max_len: int = 20  # T
    pseudo_len: int = 20  # T' (recalled items per domain)
    num_eval_negatives: int = 999
    num_train_negatives: int = 1
    # paper protocol (raw ratings and synthetic)
    k_core: int = 0
    min_rating: float = 0.0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    overlap_ratio: float = 1.0  # K_o
    cold_start_ratio: float = 0.2  # K_cs
    density: float = 1.0  # D_s
    valid_fraction: float = 0.125  # authors' files: share of train users carved into valid (80/10/10)
    drop_leaky_train_rows: bool = False
    # synthetic generator
    synthetic_users: int = 3000
    synthetic_items_x: int = 800
    synthetic_items_y: int = 600
