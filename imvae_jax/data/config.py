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
    # raw ratings layout: one file per domain (user,item,rating,timestamp; header optional; .gz ok)
    ratings_x: str = ""
    ratings_y: str = ""
    seed: int = 0
    max_len: int = 20  # T
    pseudo_len: int = 20  # T' (recalled items per domain)
    num_eval_negatives: int = 999
    num_train_negatives: int = 1
    # training augmentation: share of training rows (with other-domain history) made cold-start
    # per batch, so the r-encoders learn through the reconstruction; 0 = the paper's protocol
    train_cold_start_rate: float = 0.0
    # paper protocol (raw ratings and synthetic)
    k_core: int = 0  # iterative k-core per domain on users and items (0 = off)
    min_rating: float = 0.0  # keep ratings >= this (the authors keep >= 3)
    min_sequence_len: int = 2  # a (user, domain) row needs this many items in the domain
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # users, stratified by X-only/Y-only/both
    overlap_ratio: float = 1.0  # K_o: share of overlapping training users kept
    cold_start_ratio: float = 0.2  # K_cs: share of overlapping valid/test rows made cold-start
    density: float = 1.0  # D_s: share of interactions kept
    other_domain_before_target: bool = False  # cut the other domain at the target's time (ratings)
    # authors' files
    valid_fraction: float = 0.125  # share of train users carved into valid (80/10/10 of the whole)
    valid_cold_start: Literal["like_test", "none"] = "like_test"  # cold-start rows of the carved valid
    drop_leaky_train_rows: bool = False  # drop training rows holding a valid/test row's target
    # synthetic generator (imvae_jax.data.synthetic)
    synthetic_users: int = 3000
    synthetic_items_x: int = 1500
    synthetic_items_y: int = 1200
    synthetic_overlap: float = 0.7  # share of users with both domains
    synthetic_shared: float = 0.9  # share of a user's interest variance that is cross-domain
    synthetic_dim: int = 8  # latent factors
