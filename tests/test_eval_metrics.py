"""Ranks and metrics: hand-worked rankings, ties, NaN, and brute-force NumPy references."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from imvae_jax.eval.metrics import (
    full_catalogue_ranks,
    hit_rate,
    metric_names,
    ndcg,
    per_row_metrics,
    protocol_ranks,
    reciprocal_rank,
    summarize,
    target_ranks,
)


def test_target_rank_hand_worked():
    scores = jnp.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # best: rank 0
            [0.1, 0.2, 0.3, 0.4],  # worst: rank 3
            [0.5, 0.6, 0.5, 0.1],  # one above, one tie -> rank 2 (tie against the target)
            [0.5, 0.5, 0.5, 0.5],  # all tied -> worst
        ]
    )
    np.testing.assert_array_equal(np.asarray(target_ranks(scores)), [0, 3, 2, 3])
    # authors' cold-start/tailed ranking: ties in the target's favour
    np.testing.assert_array_equal(np.asarray(target_ranks(scores, "authors-group")), [0, 3, 1, 0])
    # authors' all-users ranking: >= pos - 1e-7
    np.testing.assert_array_equal(np.asarray(target_ranks(scores, "authors-all")), [0, 3, 2, 3])


def test_protocol_ranks():
    scores = jnp.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.2]])
    ranks, ranks_all = protocol_ranks(scores)
    assert ranks_all is None and np.asarray(ranks).tolist() == [1, 2]
    ranks, ranks_all = protocol_ranks(scores, "authors")
    assert np.asarray(ranks).tolist() == [0, 1] and np.asarray(ranks_all).tolist() == [1, 2]


def test_authors_all_epsilon():
    # a negative 5e-8 below the target still counts (>= pos - 1e-7); 2e-7 below does not
    scores = jnp.array([[0.25, 0.25 - 5e-8, 0.25 - 2e-7]], dtype=jnp.float32)
    assert int(target_ranks(scores, "authors-all")[0]) == 1
    assert int(target_ranks(scores, "authors-group")[0]) == 0
    assert int(target_ranks(scores)[0]) == 0


def test_nan_counts_against_target():
    scores = jnp.array([[jnp.nan, 0.1, 0.2], [0.5, jnp.nan, 0.1]])
    np.testing.assert_array_equal(np.asarray(target_ranks(scores)), [2, 1])


def test_bad_tie_mode():
    with pytest.raises(ValueError, match="tie_mode"):
        target_ranks(jnp.zeros((2, 3)), "optimistic")


def test_metric_values_hand_worked():
    ranks = np.array([0, 3, 9, 10, 50])
    np.testing.assert_allclose(ndcg(ranks, 10), [1.0, 1 / math.log2(5), 1 / math.log2(11), 0.0, 0.0])
    np.testing.assert_array_equal(hit_rate(ranks, 10), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(hit_rate(ranks, 5), [1, 1, 0, 0, 0])
    np.testing.assert_allclose(reciprocal_rank(ranks), [1, 1 / 4, 1 / 10, 1 / 11, 1 / 51])
    assert metric_names((5, 10)) == ["ndcg@5", "hr@5", "ndcg@10", "hr@10", "mrr"]


def _brute_rank_sorted(row: np.ndarray, target_column: int, excluded: set[int]) -> int:
    """Position of the target after a stable sort that puts ties *before* the target."""
    order = [j for j in range(row.size) if j not in excluded]
    # sort by (-score, target last among equals)
    order.sort(key=lambda j: (-row[j], j == target_column))
    return order.index(target_column)


def test_sampled_ranks_match_bruteforce():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(40, 12)).astype(np.float32)  # many ties
    expected = [_brute_rank_sorted(scores[b], 0, set()) for b in range(scores.shape[0])]
    np.testing.assert_array_equal(np.asarray(target_ranks(jnp.asarray(scores))), expected)


@pytest.mark.parametrize("chunk_size", [3, 7, 64])
def test_full_catalogue_matches_bruteforce(chunk_size):
    rng = np.random.default_rng(1)
    batch, n_items, t = 16, 20, 5
    scores = rng.integers(0, 5, size=(batch, n_items + 1)).astype(np.float32)
    targets = rng.integers(1, n_items + 1, size=batch)
    history = rng.integers(0, n_items + 1, size=(batch, t))  # 0 = padding, duplicates likely
    history[0, :2] = targets[0]  # the target inside the history is not excluded
    expected = []
    for b in range(batch):
        excluded = {0} | (set(history[b].tolist()) - {int(targets[b])})
        expected.append(_brute_rank_sorted(scores[b], int(targets[b]), excluded))
    got = full_catalogue_ranks(jnp.asarray(scores), jnp.asarray(targets), jnp.asarray(history), chunk_size=chunk_size)
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_full_catalogue_agrees_with_sampled_when_candidates_are_the_catalogue():
    rng = np.random.default_rng(2)
    batch, n_items = 8, 30
    scores = rng.normal(size=(batch, n_items + 1)).astype(np.float32)
    targets = rng.integers(1, n_items + 1, size=batch)
    history = np.stack([rng.choice(np.setdiff1d(np.arange(1, n_items + 1), [targets[b]]), 4, replace=False) for b in range(batch)])
    full = np.asarray(full_catalogue_ranks(jnp.asarray(scores), jnp.asarray(targets), jnp.asarray(history), chunk_size=8))
    for b in range(batch):
        others = np.setdiff1d(np.arange(1, n_items + 1), np.append(history[b], targets[b]))
        candidates = np.concatenate([[targets[b]], others])
        sampled = int(target_ranks(jnp.asarray(scores[b, candidates][None, :]))[0])
        assert full[b] == sampled


def test_summarize_groups_and_authors_all():
    ranks = np.array([0, 3, 20, 1])
    domains = np.array([0, 0, 1, 1])
    groups = {"all": np.ones(4, bool), "tailed": np.array([True, False, True, False])}
    out = summarize(ranks, domains, groups, ks=(10,), ranks_all=np.array([1, 3, 20, 1]))
    assert out["x"]["all"]["n"] == 2
    assert out["x"]["all"]["hr@10"] == 1.0
    assert out["x"]["all"]["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 2)
    assert out["x"]["tailed"]["ndcg@10"] == 1.0  # ranks, not ranks_all, outside "all"
    assert out["y"]["tailed"] == {"ndcg@10": 0.0, "hr@10": 0.0, "mrr": pytest.approx(1 / 21), "n": 1}
    per_row = per_row_metrics(ranks, (10,))
    assert out["y"]["all"]["mrr"] == pytest.approx(per_row["mrr"][2:].mean())
