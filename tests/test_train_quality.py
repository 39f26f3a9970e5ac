"""Does IM-VAE's cross-domain path pay for cold-start users on the synthetic data?

IM-VAE (paper variant, LightGCN pseudo-sequences) against popularity and the same model built
with ``use_cross_domain=False``, on HR@10 of the cold-start test rows (both domains pooled),
asserted with a margin.

Opt-in (``IMVAE_QUALITY=1``): on the default synthetic data (3,000 users) and a small model
(d=64, one block, 12 epochs, about 2 minutes per model on 2 CPU cores) the margin does NOT hold
yet. Measured (valid-selected test HR@10, cold-start rows X 38 / Y 46): IM-VAE 0.21 / 0.26,
no cross-domain 0.21 / 0.26, popularity 0.29 / 0.24. The trained users' representations ``h``
barely vary across users (std ~1e-4 against a norm ~9): the models learn item popularity, and
SASRec and the reconstruction-only recipe do no better (all-users HR@10 ~0.16-0.19 against
popularity's ~0.20). Kept runnable so the claim is checked as the model and data improve.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("IMVAE_QUALITY"), reason="opt-in (IMVAE_QUALITY=1): see the module docstring"),
]
MARGIN = 0.02
COMMON = (
    "model.dim=64",
    "model.num_blocks=1",
    "train.batch_size=256",
    "train.epochs=12",
    "train.learning_rate=0.002",
    "train.progress=false",
    "eval.full_ranking=false",
)


def cold_start_hr(result: dict) -> float:
    hits = sum(result[d]["cold_start"]["hr@10"] * result[d]["cold_start"]["n"] for d in ("x", "y"))
    return hits / sum(result[d]["cold_start"]["n"] for d in ("x", "y"))


def test_cross_domain_latents_help_cold_start_users(tmp_path: Path):
    from imvae_jax.config import resolve
    from imvae_jax.data.schema import read_dataset, write_dataset
    from imvae_jax.data.synthetic import build_synthetic
    from imvae_jax.psg.pipeline import add_pseudo
    from imvae_jax.train.cli import popularity_reference
    from imvae_jax.train.loop import run

    cfg = resolve(None, [*COMMON, f"data.dataset={tmp_path / 'data'}", "psg.epochs=100"])
    write_dataset(build_synthetic(cfg.data), tmp_path / "plain")
    add_pseudo(tmp_path / "plain", tmp_path / "data", cfg.psg)
    scores = {}
    for name, extra in (("imvae", []), ("no_cross", ["model.use_cross_domain=false"])):
        run_cfg = resolve(None, [*COMMON, f"data.dataset={tmp_path / 'data'}", f"train.run_dir={tmp_path / name}", *extra])
        scores[name] = cold_start_hr(run(run_cfg, log=lambda _: None)["protocols"]["valid-selected"]["results"])
    scores["popularity"] = cold_start_hr(popularity_reference(read_dataset(tmp_path / "data"), cfg)["results"])
    assert np.isfinite(list(scores.values())).all()
    assert scores["imvae"] > max(scores["no_cross"], scores["popularity"]) + MARGIN, scores
