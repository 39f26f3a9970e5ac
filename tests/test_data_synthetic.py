"""The synthetic generator: seeded, honours its knobs, and plants a usable cross-domain signal."""

from __future__ import annotations

import numpy as np
import pytest

from imvae_jax.data import ragged
from imvae_jax.data.audit import full_lists
from imvae_jax.data.build import assign_users
from imvae_jax.data.config import DataConfig
from imvae_jax.data.synthetic import build_synthetic, generate


@pytest.fixture(scope="module")
def default_splits():
    return build_synthetic()


def test_seeded(default_splits):
    again = build_synthetic()
    other = build_synthetic(seed=1)
    for name in ("train", "valid", "test"):
        assert again[name].fingerprint == default_splits[name].fingerprint
        assert other[name].fingerprint != default_splits[name].fingerprint


def test_shapes_of_the_protocol(default_splits):
    cfg = DataConfig()
    counts = {n: len(np.unique(s.column("user_id"))) for n, s in default_splits.items()}
    total = sum(counts.values())
    assert abs(counts["train"] / total - 0.8) < 0.01 and abs(counts["test"] / total - 0.1) < 0.01
    users = [set(np.unique(s.column("user_id")).tolist()) for s in default_splits.values()]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    for name in ("valid", "test"):
        s = default_splits[name]
        # K_cs: int(0.2 * overlapping rows) rows lose their target-domain history, kind 1
        assert int(s.column("cold_start").sum()) == int(cfg.cold_start_ratio * s.column("overlap").sum())
        assert set(np.unique(s.column("cold_start_kind")[s.column("cold_start")]).tolist()) == {1}
        assert len(s.column_lists("negatives")[1]) == 999 * len(s)
    train = default_splits["train"]
    assert not train.column("cold_start").any()
    lengths = np.diff(full_lists(train)[0][0])
    lengths = lengths[lengths > 0]
    assert np.median(lengths) <= 5 and lengths.max() >= 30  # long-tailed


def test_knobs():
    seqs = generate(DataConfig(synthetic_users=2000, synthetic_overlap=0.3))
    both = (ragged.lengths(seqs.x) > 0) & (ragged.lengths(seqs.y) > 0)
    assert abs(both.mean() - 0.3) < 0.04
    full = build_synthetic(synthetic_users=1000, num_eval_negatives=0)["train"]
    half = build_synthetic(synthetic_users=1000, num_eval_negatives=0, overlap_ratio=0.5)["train"]
    overlapping = lambda s: len(np.unique(s.column("user_id")[s.column("overlap")]))  # noqa: E731
    assert overlapping(half) == round(0.5 * overlapping(full))
    assert len(half) < len(full)
    sparse = build_synthetic(synthetic_users=1000, num_eval_negatives=0, density=0.5)["train"]
    assert 0.3 < sum(len(l[1]) for l in full_lists(sparse)) / sum(len(l[1]) for l in full_lists(full)) < 0.7


def test_assign_users_stratified():
    kind = np.repeat([0, 1, 2], [100, 50, 30])
    split = assign_users(kind, (0.8, 0.1, 0.1), np.random.default_rng(0))
    for k, n in ((0, 100), (1, 50), (2, 30)):
        counts = np.bincount(split[kind == k], minlength=3)
        expected_train = round(0.8 * n)
        assert counts[0] == expected_train and counts[1] == round(0.9 * n) - expected_train


def _co_occurrence_hit_rate(splits, use_other: bool) -> tuple[float, float]:
    """HR@10 over the stored candidates of an item-to-item co-occurrence scorer fitted on train:
    own-domain history only, or own plus other-domain history (cross-domain co-occurrence)."""
    train, test = splits["train"], splits["test"]
    width = max(train.n_items) + 1

    def matrix(lists, n_rows):
        m = np.zeros((n_rows, width))
        np.add.at(m, (ragged.row_ids(lists), lists[1]), 1.0)
        return m

    tx, ty = (matrix(lst, len(train)) for lst in full_lists(train))
    hx, hy = matrix(test.column_lists("seq_x"), len(test)), matrix(test.column_lists("seq_y"), len(test))

    def normalise(c):
        return c / (c.sum(axis=1, keepdims=True) + 1.0)

    domain = test.column("target_domain")
    score_x = hx @ normalise(tx.T @ tx) + (hy @ normalise(ty.T @ tx) if use_other else 0)
    score_y = hy @ normalise(ty.T @ ty) + (hx @ normalise(tx.T @ ty) if use_other else 0)
    popularity = np.stack([tx.sum(0), ty.sum(0)])[domain]
    score = np.where(domain[:, None] == 0, score_x, score_y) + 1e-3 * popularity / popularity.sum(1, keepdims=True)
    negatives = test.column_lists("negatives")[1].reshape(len(test), -1)
    candidates = np.concatenate([test.column("target_item")[:, None], negatives], axis=1)
    s = np.take_along_axis(score, candidates, axis=1)
    hit = (s[:, 1:] > s[:, :1]).sum(axis=1) < 10
    cold = test.column("cold_start_kind") == 1
    return float(hit.mean()), float(hit[cold].mean())


def test_cross_domain_signal_pays(default_splits):
    own_all, own_cold = _co_occurrence_hit_rate(default_splits, use_other=False)
    cross_all, cross_cold = _co_occurrence_hit_rate(default_splits, use_other=True)
    assert cross_all > own_all + 0.02
    assert cross_cold > own_cold + 0.1  # cold-start rows: the other domain is all there is
