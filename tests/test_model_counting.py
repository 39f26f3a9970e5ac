"""Closed-form parameter and FLOP counts: the spec's figures, the real tree, the traced matmuls."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flax import nnx

from imvae_jax.model import counting
from imvae_jax.model.config import ModelConfig
from imvae_jax.model.imvae import build_model

AUTHORS = ModelConfig(variant="authors")


def test_authors_figures_of_the_spec():
    # spec 2.14: 2N d + 82 d^2 + 92 d + 2 d h + 2 h + 7
    assert counting.count_params(AUTHORS, n_items_x=0, n_items_y=0, joint_size=24507) == 7_637_319
    assert counting.count_params(AUTHORS, n_items_x=0, n_items_y=0, joint_size=29768) == 8_984_135
    assert counting.count_params(AUTHORS, n_items_x=0, n_items_y=0, joint_size=40718) == 11_787_335
    mlp = ModelConfig(variant="authors", cross_encoder="mlp")
    d = 128
    assert counting.count_params(mlp, n_items_x=0, n_items_y=0, joint_size=24507) == 7_637_319 + 4 * d * d - 6 * d
    # spec 9: forward 59,294,976; forward + backward 177,884,928 (177.9 MFLOP); eval 125,479,936
    assert counting.forward_flops(AUTHORS, convention="authors") == 59_294_976
    assert counting.training_flops_per_row(AUTHORS, convention="authors") == 177_884_928
    assert counting.forward_flops(AUTHORS, n_negatives=999, training=False, convention="authors") == 125_479_936
    # with T' = 20 (no interleave) the spec's training forward is 41,108,736
    t, d, h = 20, 128, 32
    closed = (48 * (t + 20) + 16 * t + 140) * d * d + (16 * (t * t + 400) + 8 * t * t + 8) * d + 4 * 2 * (2 * d * h + h)
    assert closed == 41_108_736


def test_implementation_differs_from_the_authors_code_only_where_documented():
    d, h = 128, 32
    decoder = 8 * d * d
    # z^x decoded once, not twice; only the target head scores its 1 + 1 candidates, with the
    # scorer's user half computed once per row
    heads, candidates = 2, 2
    saved_train = decoder + heads * candidates * 2 * (2 * d * h + h) - (2 * d * h + candidates * (2 * d * h + 2 * h))
    assert counting.forward_flops(AUTHORS, convention="authors") - counting.forward_flops(AUTHORS) == saved_train
    with pytest.raises(ValueError, match="authors"):
        counting.forward_flops(ModelConfig(), convention="authors")


TINY = dict(dim=16, max_len=6, pseudo_len=4, mlp_hidden=(8, 12, 8), scorer_hidden=8)
CONFIGS = {
    "paper": ModelConfig(**TINY),
    "paper_mlp": ModelConfig(**TINY, cross_encoder="mlp"),
    "paper_single": ModelConfig(**TINY, use_cross_domain=False),
    "authors": ModelConfig(**{**TINY, "pseudo_len": 6}, variant="authors"),
    "authors_mlp": ModelConfig(**{**TINY, "pseudo_len": 6}, variant="authors", cross_encoder="mlp"),
    "authors_single": ModelConfig(**{**TINY, "pseudo_len": 6}, variant="authors", use_cross_domain=False),
    "sasrec": ModelConfig(**TINY, variant="sasrec"),
}
NX, NY, JOINT, B, K = 30, 40, 70, 3, 4


def tiny_batch(cfg: ModelConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "seq_x": rng.integers(0, NX + 1, (B, cfg.max_len)).astype(np.int32),
        "seq_y": rng.integers(0, NY + 1, (B, cfg.max_len)).astype(np.int32),
        "pseudo_x": rng.integers(1, NX + 1, (B, cfg.pseudo_len)).astype(np.int32),
        "pseudo_y": rng.integers(1, NY + 1, (B, cfg.pseudo_len)).astype(np.int32),
        "target_domain": np.array([0, 1, 0], np.int32),
        "candidates": rng.integers(1, NX + 1, (B, 1 + K)).astype(np.int32),
        "cold_start": np.array([False, True, False]),
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_closed_forms_match_the_model(name):
    cfg = CONFIGS[name]
    kwargs = {}
    if cfg.variant == "authors":
        kwargs = {"source_ids_x": [None, *range(NX)], "source_ids_y": [None, *range(25, 25 + NY)], "joint_size": JOINT}
    model = build_model(cfg, n_items_x=NX, n_items_y=NY, seed=0, **kwargs)
    _, params, _ = nnx.split(model, nnx.Param, ...)
    actual = sum(leaf.size for leaf in jax.tree.leaves(params))
    assert counting.count_params(cfg, n_items_x=NX, n_items_y=NY, joint_size=JOINT) == actual
    batch = tiny_batch(cfg)
    for key, training in ((jax.random.key(0), True), (None, False)):
        traced = counting.jaxpr_matmul_flops(lambda b: model(b, key).scores, batch)
        assert traced == B * counting.forward_flops(cfg, n_negatives=K, training=training)


def test_info_cli(capsys):
    from imvae_jax.cli import main

    assert main(["info", "--set", "model.variant=authors", "--authors-n", "24507", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["parameters"] == 7_637_319
    assert report["authors_code_train_flops_per_row"] == 177_884_928
    assert main(["info", "--items-x", "10", "--items-y", "20"]) == 0
    assert "parameters" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--items-x"):
        main(["info"])
