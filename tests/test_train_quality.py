"""Does a trained IM-VAE learn more than item popularity on the synthetic data?

The quick start's model and training (``imvae_jax.train.cli.QUICK_OVERRIDES``: d=64, one block,
encoders/decoders without hidden layers, KL weights 0.01, sampled softmax over 100 negatives, 10 epochs)
on the default synthetic data with LightGCN pseudo-sequences, against popularity on the same test
candidates (valid-selected test HR@10, both domains pooled), asserted with margins. With the
paper's training defaults (three-layer {32, 64, 32} MLPs, KL weight 1, one BCE negative) the same
run learns popularity only (HR@10 0.15-0.20; see ``QUICK_OVERRIDES``).

Cold-start rows (84 here) and popularity. With the paper's masking of cold-start rows (z^d and
z_a^d masked, the default) IM-VAE only *ties* popularity on them: over 3 seeds X 28.95 ± 5.68 vs
28.95, Y 25.36 ± 4.47 vs 23.91 (``experiments/RESULTS.md``, synthetic Tables 2 and 3). An earlier
version of this test asserted a 2-point cold-start lead for that model; it held on one draw and
failed when the micro-batched step changed the dropout draws, so it was a coin toss. What holds
with a margin: the paper-masked model beats popularity on all users (measured 0.32 vs 0.18), and
the model that keeps z_a^d, the latent of the PSG pseudo-sequence recalled for the user, on
cold-start rows (``model.cold_start_mask=own``) beats popularity on cold-start rows (3 seeds:
X 35.96 ± 1.24, Y 44.20 ± 2.71).

Against the same model built with ``use_cross_domain=False`` (no z_t, no r; cold-start rows
masked exactly as in IM-VAE, so the ablation has no input on them), paper-masked IM-VAE must win
on cold-start rows: 3 seeds X 28.95 vs 16.67, Y 25.36 vs 15.94.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
MARGIN_ALL = 0.08
MARGIN_COLD = 0.02  # IM-VAE over its ablation without cross-domain latents (measured gap ~0.10)
MARGIN_COLD_POPULARITY = 0.05  # IM-VAE keeping z_a^d over popularity (measured gap ~0.14)


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


@pytest.fixture(scope="module")
def imvae_keep_z_a_result(dataset: Path, tmp_path_factory) -> dict:
    return train(dataset, tmp_path_factory.mktemp("imvae_own"), "model.cold_start_mask=own")


def test_imvae_beats_popularity(dataset: Path, imvae_result: dict, imvae_keep_z_a_result: dict):
    reference = popularity(dataset)
    scores = {
        name: {g: hit_rate(r, g) for g in ("all", "cold_start")}
        for name, r in (("imvae", imvae_result), ("imvae_keep_z_a", imvae_keep_z_a_result), ("popularity", reference))
    }
    assert np.isfinite([v for s in scores.values() for v in s.values()]).all()
    assert scores["imvae"]["all"] > scores["popularity"]["all"] + MARGIN_ALL, scores
    assert scores["imvae_keep_z_a"]["all"] > scores["popularity"]["all"] + MARGIN_ALL, scores
    assert scores["imvae_keep_z_a"]["cold_start"] > scores["popularity"]["cold_start"] + MARGIN_COLD_POPULARITY, scores


def test_cross_domain_latents_help_cold_start_users(dataset: Path, imvae_result: dict, tmp_path: Path):
    with_cross = hit_rate(imvae_result, "cold_start")
    without = hit_rate(train(dataset, tmp_path / "no_cross", "model.use_cross_domain=false"), "cold_start")
    assert with_cross > without + MARGIN_COLD, {"imvae": with_cross, "no_cross": without}
