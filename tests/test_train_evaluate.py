"""The evaluator against a NumPy reference: sampled and full-catalogue ranks, per domain and group."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from imvae_jax.train.evaluate import SplitEvaluator, epoch_metric, history_matrix
from imvae_jax.train.state import create, make_optimizer
from imvae_jax.train.config import TrainConfig
from imvae_jax.train.step import Parallel


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from imvae_jax.config import Config
    from imvae_jax.data.schema import read_dataset, write_dataset
    from imvae_jax.data.synthetic import build_synthetic
    from imvae_jax.model.imvae import build_model
    from imvae_jax.psg.config import PSGConfig
    from imvae_jax.psg.pipeline import add_pseudo

    root = tmp_path_factory.mktemp("eval")
    splits = build_synthetic(synthetic_users=200, synthetic_items_x=90, synthetic_items_y=70, num_eval_negatives=19)
    write_dataset(splits, root / "plain")
    add_pseudo(root / "plain", root / "data", PSGConfig(mode="random", top_k=3))
    test = read_dataset(root / "data")["test"]
    model_cfg = dataclasses.replace(Config().model, dim=16, num_blocks=1, max_len=6, pseudo_len=3)
    n_x, n_y = test.n_items
    graphdef, state = create(
        lambda: build_model(model_cfg, n_items_x=n_x, n_items_y=n_y, seed=5), make_optimizer(TrainConfig()), seed=0
    )
    return test, graphdef, state


def reference_ranks(test, graphdef, state):
    """One big batch, plain NumPy ranking: sampled (ties against the target) and full catalogue."""
    from imvae_jax.data.batches import Batcher

    model = nnx.merge(graphdef, state.params, state.rest)
    batch = next(Batcher(test, len(test), max_len=6, pseudo_len=3).epoch(0))
    out = model(batch, None)
    scores = np.asarray(out.scores)
    sampled = (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    full = np.zeros(len(test), np.int64)
    domains = batch["target_domain"]
    for d, h in enumerate((np.asarray(out.h_x), np.asarray(out.h_y))):
        n = test.n_items[d]
        offsets, values = test.column_lists(("seq_x", "seq_y")[d])
        all_scores = np.asarray(model.score_items(h, np.arange(n + 1, dtype=np.int32), d))  # [R, n+1]
        for row in np.flatnonzero(domains == d):
            target = batch["candidates"][row, 0]
            history = set(values[offsets[row]:offsets[row + 1]].tolist())
            others = [i for i in range(1, n + 1) if i != target and i not in history]
            full[row] = int((all_scores[row, others] >= all_scores[row, target]).sum())
    return sampled, full, domains


def cell(ranks, select, k):
    r = ranks[select]
    return {"hr": float((r < k).mean()), "ndcg": float(np.where(r < k, 1 / np.log2(r + 2), 0).mean()), "n": int(select.sum())}


def test_evaluator_matches_numpy_reference(setup):
    test, graphdef, state = setup
    sampled, full, domains = reference_ranks(test, graphdef, state)
    assert sampled.max() > 0 and full.max() > sampled.max()  # non-trivial rankings
    parallel = Parallel(jax.devices()[:8])  # batch 16 on 8 devices, the last batch padded
    evaluator = SplitEvaluator(
        test, graphdef, parallel, batch_size=16, max_len=6, pseudo_len=3, ks=(1, 5, 10), full_ranking=True, chunk_size=32
    )
    result = evaluator(parallel.put_replicated(state.params), parallel.put_replicated(state.rest))
    assert result["rows"] == len(test)
    groups = {
        "all": np.ones(len(test), bool),
        "tailed": test.column("tailed").astype(bool),
        "cold_start": test.column("cold_start").astype(bool),
    }
    for key, ranks in (("sampled", sampled), ("full", full)):
        for d, domain in enumerate(("x", "y")):
            for group, mask in groups.items():
                select = mask & (domains == d)
                got = result[key][domain][group]
                assert got["n"] == select.sum()
                if not select.any():
                    continue
                for k in (1, 5, 10):
                    want = cell(ranks, select, k)
                    assert got[f"hr@{k}"] == pytest.approx(want["hr"], abs=1e-12), (key, domain, group, k)
                    assert got[f"ndcg@{k}"] == pytest.approx(want["ndcg"], abs=1e-12), (key, domain, group, k)
                assert got["mrr"] == pytest.approx(float((1 / (ranks[select] + 1)).mean()), abs=1e-12)


def test_history_matrix_holds_the_whole_target_domain_history(setup):
    test, _, _ = setup
    matrix = history_matrix(test)
    domains = test.column("target_domain")
    for row in range(len(test)):
        offsets, values = test.column_lists(("seq_x", "seq_y")[domains[row]])
        want = values[offsets[row]:offsets[row + 1]]
        assert matrix[row, : len(want)].tolist() == want.tolist()
        assert (matrix[row, len(want):] == 0).all()


def test_epoch_metric_is_the_mean_over_domains():
    result = {"x": {"all": {"ndcg@10": 0.2}}, "y": {"all": {"ndcg@10": 0.4}}}
    assert epoch_metric(result) == pytest.approx(0.3)
    result["y"]["all"]["ndcg@10"] = None  # a domain without rows is left out
    assert epoch_metric(result) == pytest.approx(0.2)
