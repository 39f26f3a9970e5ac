"""Does a trained IM-VAE learn more than item popularity on the synthetic data?

The quick start's model and training (``imvae_jax.train.cli.QUICK_OVERRIDES``: d=64, one block,
encoders/decoders without hidden layers, KL weights 0.01, sampled softmax over 100 negatives, 10 epochs)
on the default synthetic data with LightGCN pseudo-sequences, against popularity on the same test
candidates (valid-selected test HR@10, both domains pooled), asserted with margins. Measured on 2
CPU cores (about 40 s of training): all users 0.32 vs popularity 0.18, cold-start rows (84) 0.31
vs 0.26. With the paper's training defaults (three-layer {32, 64, 32} MLPs, KL weight 1, one BCE
negative) the same run learns popularity only (HR@10 0.15-0.20; see ``QUICK_OVERRIDES``).

Against the same model built with ``use_cross_domain=False`` (no z_t, no r; cold-start rows
masked exactly as in IM-VAE, so the ablation has no input on them), IM-VAE must win on cold-start
rows: measured 0.31 vs 0.20 (84 rows). Before the ablation was masked like-for-like it kept z_a^d,
the PSG pseudo-sequence latent, and reached 0.40: the pseudo-sequence alone carries strong
cold-start signal on this data (see ``model.cold_start_mask``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
MARGIN_ALL = 0.08
MARGIN_COLD = 0.02


def common() -> tuple[str, ...]:
    from imvae_jax.train.cli import QUICK_OVERRIDES

    return (*QUICK_OVERRIDES, "train.progress=false", "eval.full_ranking=false")


def hit_rate(result: dict, group: str) -> float:
    hits = sum(result[d][group]["hr@10"] * result[d][group]["n"] for d in ("x", "y"))
    return hits / sum(result[d][group]["n"] for d in ("x", "y"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from imvae_jax.config import resolve
    from imvae_jax.data.schema import write_dataset
    from imvae_jax.data.synthetic import build_synthetic
    from imvae_jax.psg.pipeline import add_pseudo

    root = tmp_path_factory.mktemp("quality")
    cfg = resolve(None, list(common()))
    write_dataset(build_synthetic(cfg.data), root / "plain")
    add_pseudo(root / "plain", root / "data", cfg.psg)
    return root / "data"


def train(dataset: Path, run_dir: Path, *extra: str) -> dict:
    from imvae_jax.config import resolve
    from imvae_jax.train.loop import run

    cfg = resolve(None, [*common(), f"data.dataset={dataset}", f"train.run_dir={run_dir}", *extra])
    return run(cfg, log=lambda _: None)["protocols"]["valid-selected"]["results"]


def popularity(dataset: Path) -> dict:
    from imvae_jax.config import resolve
    from imvae_jax.data.schema import read_dataset
    from imvae_jax.train.cli import popularity_reference

    return popularity_reference(read_dataset(dataset), resolve(None, list(common())))["results"]


@pytest.fixture(scope="module")
def imvae_result(dataset: Path, tmp_path_factory) -> dict:
    return train(dataset, tmp_path_factory.mktemp("imvae"))


def test_imvae_beats_popularity(dataset: Path, imvae_result: dict):
    model, reference = imvae_result, popularity(dataset)
    scores = {name: {g: hit_rate(r, g) for g in ("all", "cold_start")} for name, r in (("imvae", model), ("popularity", reference))}
    assert np.isfinite([v for s in scores.values() for v in s.values()]).all()
    assert scores["imvae"]["all"] > scores["popularity"]["all"] + MARGIN_ALL, scores
    assert scores["imvae"]["cold_start"] > scores["popularity"]["cold_start"] + MARGIN_COLD, scores


def test_cross_domain_latents_help_cold_start_users(dataset: Path, imvae_result: dict, tmp_path: Path):
    with_cross = hit_rate(imvae_result, "cold_start")
    without = hit_rate(train(dataset, tmp_path / "no_cross", "model.use_cross_domain=false"), "cold_start")
    assert with_cross > without + MARGIN_COLD, {"imvae": with_cross, "no_cross": without}
