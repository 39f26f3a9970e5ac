"""Evaluation negatives: reproducible, outside history and target, distinct, uniform."""

from __future__ import annotations

import numpy as np
import pytest

from imvae_jax.data import ragged
from imvae_jax.data.candidates import add_negatives, sample_negatives
from imvae_jax.data.schema import DatasetError, validate
from imvae_jax.data.synthetic import build_synthetic


@pytest.fixture(scope="module")
def test_split():
    return build_synthetic(synthetic_users=400, num_eval_negatives=0)["test"]


def test_same_seed_same_candidates_and_history_excluded(test_split):
    a = add_negatives(test_split, seed=4, k=999)
    b = add_negatives(test_split, seed=4, k=999)
    c = add_negatives(test_split, seed=5, k=999)
    na, nb, nc = (s.column_lists("negatives")[1].reshape(len(s), 999) for s in (a, b, c))
    np.testing.assert_array_equal(na, nb)
    assert a.fingerprint == b.fingerprint and a.meta["negatives_seed"] == 4
    assert (na != nc).mean() > 0.9
    validate(a)  # the contract's own checks
    # independent check with Python sets
    domain, target = a.column("target_domain"), a.column("target_item")
    lists = {0: a.column_lists("seq_x"), 1: a.column_lists("seq_y")}
    n_items = a.n_items
    for r in range(len(a)):
        off, val = lists[int(domain[r])]
        excluded = set(val[off[r] : off[r + 1]].tolist()) | {int(target[r])}
        row = na[r].tolist()
        assert len(set(row)) == 999
        assert not excluded & set(row)
        assert min(row) >= 1 and max(row) <= n_items[int(domain[r])]


def test_uniform_over_the_allowed_items():
    # 3,000 identical rows: catalogue 1..10, history {1, 2}, target 3 -> 7 allowed items, 3 drawn
    rows = 3000
    history = ragged.from_lists([[1, 2]] * rows)
    out = sample_negatives(np.zeros(rows, np.int8), np.full(rows, 3), history, (10, 4), k=3, seed=0)
    assert out.shape == (rows, 3)
    assert (np.sort(out, axis=1)[:, 1:] != np.sort(out, axis=1)[:, :-1]).all()  # distinct per row
    counts = np.bincount(out.ravel(), minlength=11)
    assert counts[:4].sum() == 0
    np.testing.assert_allclose(counts[4:] / counts.sum(), 1 / 7, atol=0.01)


def test_every_allowed_item_when_k_equals_the_pool_and_error_beyond():
    history = ragged.from_lists([[1, 2], [5]])
    out = sample_negatives(np.array([0, 1]), np.array([3, 4]), history, (6, 5), k=3, seed=1)
    assert sorted(out[0].tolist()) == [4, 5, 6]
    assert sorted(out[1].tolist()) == [1, 2, 3]
    with pytest.raises(DatasetError, match="row 0: only 3 items of domain X.*fewer than the 4"):
        sample_negatives(np.array([0, 1]), np.array([3, 4]), history, (6, 5), k=4, seed=1)
