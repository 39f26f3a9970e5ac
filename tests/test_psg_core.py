"""PSG core: graph normalisation, propagation vs dense NumPy, BPR gradient, recall, LightGCN vs popularity."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from imvae_jax.psg.config import PSGConfig
from imvae_jax.psg.graph import build_graph, user_item_csr
from imvae_jax.psg.recall import random_items, ranking_metrics, top_k_items


def random_graph(seed=0, n_users=13, n_items=11, n_edges=40):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users - 1, n_edges)  # the last user has no edge
    items = rng.integers(0, n_items - 1, n_edges)  # the last item has no edge
    return users, items, n_users, n_items


def dense_normalised(users, items, n_users, n_items):
    """D^-1/2 A D^-1/2 built densely, the independent reference."""
    n = n_users + n_items
    adjacency = np.zeros((n, n))
    adjacency[users, n_users + items] = 1.0
    adjacency[n_users + items, users] = 1.0
    degree = adjacency.sum(axis=1)
    with np.errstate(divide="ignore"):
        inv = np.where(degree > 0, degree**-0.5, 0.0)
    return inv[:, None] * adjacency * inv[None, :]


def test_graph_normalisation_matches_dense_and_isolated_nodes_are_zero():
    users, items, nu, ni = random_graph()
    graph = build_graph(users, items, nu, ni)
    reference = dense_normalised(users, items, nu, ni)
    np.testing.assert_allclose(graph.dense(), reference, rtol=1e-6)
    assert np.isfinite(graph.weights).all()
    order = np.lexsort((graph.cols, graph.rows))
    assert (order == np.arange(order.size)).all(), "edges must be sorted by (row, col)"
    assert graph.degrees()[nu - 1] == 0 and graph.degrees()[nu + ni - 1] == 0
    assert not (graph.rows == nu - 1).any() and not (graph.cols == nu + ni - 1).any()


@pytest.mark.parametrize("width", [1, 2, 16])  # 1 and 2: most nodes take the chunked (head) path
def test_propagation_equals_dense_numpy(width):
    import jax.numpy as jnp

    from imvae_jax.psg.lightgcn import propagate
    from imvae_jax.psg.propagation import build_layout

    users, items, nu, ni = random_graph(1)
    graph = build_graph(users, items, nu, ni)
    layout = build_layout(graph, width)
    assert (layout.n_head > 0) == (width < 16)
    rng = np.random.default_rng(2)
    e0 = rng.standard_normal((nu + ni, 5)).astype(np.float32)
    a = dense_normalised(users, items, nu, ni)
    layers, layer = [e0.astype(np.float64)], e0.astype(np.float64)
    for _ in range(3):
        layer = a @ layer
        layers.append(layer)
    expected = np.mean(layers, axis=0)
    got = np.asarray(propagate(jnp.asarray(e0), layout, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[nu - 1], e0[nu - 1] / 4, rtol=1e-6)  # isolated: only layer 0 survives


@pytest.mark.parametrize("width", [2, 16])
def test_propagation_gradient_equals_dense_transpose(width):
    """The custom VJP (Âᵀ = Â, the same kernel on the cotangent) against the dense M^T c and against
    autodiff of the plain gather + segment_sum formulation."""
    import jax
    import jax.numpy as jnp

    from imvae_jax.psg.lightgcn import propagate
    from imvae_jax.psg.propagation import build_layout

    users, items, nu, ni = random_graph(5)
    graph = build_graph(users, items, nu, ni)
    layout = build_layout(graph, width)
    rng = np.random.default_rng(6)
    e0 = rng.standard_normal((nu + ni, 3)).astype(np.float32)
    c = rng.standard_normal((nu + ni, 3)).astype(np.float32)
    a = dense_normalised(users, items, nu, ni)
    m = sum(np.linalg.matrix_power(a, k) for k in range(4)) / 4

    def segment_sum_propagate(table):
        layer, total = table, table
        for _ in range(3):
            layer = jax.ops.segment_sum(graph.weights[:, None] * layer[graph.cols], graph.rows, num_segments=nu + ni)
            total = total + layer
        return total / 4

    got = np.asarray(jax.jit(jax.grad(lambda t: jnp.sum(c * jnp.tanh(propagate(t, layout, 3)))))(jnp.asarray(e0)))
    reference = np.asarray(jax.grad(lambda t: jnp.sum(c * jnp.tanh(segment_sum_propagate(t))))(jnp.asarray(e0)))
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-6)
    final = m @ e0.astype(np.float64)
    np.testing.assert_allclose(got, m.T @ (c * (1 - np.tanh(final) ** 2)), rtol=1e-5, atol=1e-6)


def test_layout_rejects_an_asymmetric_graph():
    from imvae_jax.psg.graph import Graph
    from imvae_jax.psg.propagation import build_layout

    graph = build_graph(*random_graph(7)[:2], 13, 11)
    weights = graph.weights.copy()
    weights[0] *= 2
    with pytest.raises(ValueError, match="symmetric"):
        build_layout(Graph(graph.rows, graph.cols, weights, graph.n_users, graph.n_items))


@pytest.mark.parametrize("width", [2, 16])
def test_bpr_gradient_matches_hand_formula(width):
    """d loss / d E0 = M^T G + decay * (ego rows) / B, with M = mean_k Â^k and G the BPR gradient
    w.r.t. the final embeddings (sigmoid(s_neg - s_pos) (e_n - e_p) / B for the user, etc.)."""
    import jax
    import jax.numpy as jnp

    from imvae_jax.psg.lightgcn import bpr_loss
    from imvae_jax.psg.propagation import build_layout

    users, items, nu, ni = random_graph(3)
    graph = build_graph(users, items, nu, ni)
    layout = build_layout(graph, width)
    rng = np.random.default_rng(4)
    e0 = rng.standard_normal((nu + ni, 4)) * 0.5
    batch_u = np.array([0, 3, 5, 0, 7])
    batch_p = np.array([1, 2, 0, 4, 9])
    batch_n = np.array([6, 5, 3, 8, 2])
    mask = np.array([1, 1, 1, 1, 0], np.float32)  # the last triple is padding
    decay, count = 0.3, 4.0
    a = dense_normalised(users, items, nu, ni)
    m = sum(np.linalg.matrix_power(a, k) for k in range(4)) / 4
    final = m @ e0
    grad_final = np.zeros_like(e0)
    grad_ego = np.zeros_like(e0)
    for b in range(4):
        u, p, n = batch_u[b], nu + batch_p[b], nu + batch_n[b]
        s = 1 / (1 + np.exp(-(final[u] @ final[n] - final[u] @ final[p])))
        grad_final[u] += s * (final[n] - final[p]) / count
        grad_final[p] += -s * final[u] / count
        grad_final[n] += s * final[u] / count
        for node in (u, p, n):
            grad_ego[node] += decay * e0[node] / count
    expected = m.T @ grad_final + grad_ego

    def loss(table):
        return bpr_loss(table, layout, batch_u, batch_p, batch_n, jnp.asarray(mask),
                        n_users=nu, layers=3, decay=decay)[0]

    got = np.asarray(jax.grad(loss)(jnp.asarray(e0, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)
    # and the loss value itself
    bpr = np.mean([np.log1p(np.exp(final[batch_u[b]] @ final[nu + batch_n[b]] - final[batch_u[b]] @ final[nu + batch_p[b]]))
                   for b in range(4)])
    reg = 0.5 * sum((e0[[batch_u[b], nu + batch_p[b], nu + batch_n[b]]] ** 2).sum() for b in range(4)) / count
    np.testing.assert_allclose(float(loss(jnp.asarray(e0, jnp.float32))), bpr + decay * reg, rtol=1e-5)


def test_top_k_excludes_history_and_is_sorted_by_score():
    rng = np.random.default_rng(5)
    queries = rng.standard_normal((37, 6)).astype(np.float32)
    keys = rng.standard_normal((50, 6)).astype(np.float32)
    lengths = rng.integers(0, 12, 37)
    lengths[3] = 48  # only 2 items allowed: the list is shorter than k
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = np.concatenate([rng.choice(50, n, replace=False) for n in lengths])
    out_off, items, scores = top_k_items(queries, keys, offsets, values, k=10, chunk=8)
    assert np.diff(out_off)[3] == 2 and (np.diff(out_off)[np.arange(37) != 3] == 10).all()
    full = queries @ keys.T
    for r in range(37):
        got = items[out_off[r] : out_off[r + 1]]
        history = set(values[offsets[r] : offsets[r + 1]].tolist())
        assert not history & set(got.tolist())
        assert len(set(got.tolist())) == got.size
        np.testing.assert_allclose(scores[out_off[r] : out_off[r + 1]], full[r, got], rtol=1e-5)
        assert (np.diff(full[r, got]) <= 1e-6).all()
        allowed = np.setdiff1d(np.arange(50), list(history))
        best = np.sort(full[r, allowed])[::-1][: got.size]
        np.testing.assert_allclose(np.sort(full[r, got])[::-1], best, rtol=1e-5)


def test_random_items_exclude_history_distinct_and_in_range():
    rng = np.random.default_rng(6)
    lengths = rng.integers(0, 30, 200)
    lengths[0] = 37  # 40 items, 37 excluded: only 3 remain
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = np.concatenate([rng.choice(40, n, replace=False) for n in lengths])
    out_off, items = random_items(40, offsets, values, 8, np.random.default_rng(0))
    assert np.diff(out_off)[0] == 3 and (np.diff(out_off)[1:] == 8).all()
    for r in range(200):
        got = items[out_off[r] : out_off[r + 1]]
        assert ((got >= 0) & (got < 40)).all() and len(set(got.tolist())) == got.size
        assert not set(got.tolist()) & set(values[offsets[r] : offsets[r + 1]].tolist())
    again = random_items(40, offsets, values, 8, np.random.default_rng(0))
    assert (again[1] == items).all()


def test_ranking_metrics_hand_worked():
    # 1 user, items scored 4 > 3 > 2 > 1 > 0 by index; item 4 is a training item (masked)
    user = np.ones((1, 1), np.float32)
    items = np.arange(5, dtype=np.float32)[:, None]
    train = (np.array([0, 1]), np.array([4]))
    test = (np.array([0, 2]), np.array([2, 0]))  # held-out: items 2 (rank 2) and 0 (rank 4)
    m = ranking_metrics(user, items, *train, *test, k=3)
    # top-3: 3, 2, 1 -> hit at rank 1 (0-based): dcg = 1/log2(3); idcg = 1 + 1/log2(3)
    assert m["recall@3"] == pytest.approx(0.5)
    assert m["ndcg@3"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_ranking_metrics_recall_top2_counts_hit():
    user = np.ones((1, 1), np.float32)
    items = np.arange(5, dtype=np.float32)[:, None]
    m = ranking_metrics(user, items, np.array([0, 1]), np.array([4]), np.array([0, 2]), np.array([2, 0]), k=2)
    assert m["recall@2"] == pytest.approx(0.5)  # top-2 = items 3, 2: item 2 is a hit
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def clustered_interactions(seed=0, n_users=400, n_items=240, clusters=8, per_user=12):
    """Users and items in clusters; a user mostly picks items of its cluster (plus popular noise)."""
    rng = np.random.default_rng(seed)
    user_cluster = rng.integers(0, clusters, n_users)
    item_cluster = np.arange(n_items) % clusters
    popularity = rng.zipf(1.6, n_items).astype(float)
    users, items = [], []
    for u in range(n_users):
        weight = np.where(item_cluster == user_cluster[u], 8.0, 0.3) * np.sqrt(popularity)
        chosen = rng.choice(n_items, per_user, replace=False, p=weight / weight.sum())
        users.append(np.full(per_user, u))
        items.append(chosen)
    return np.concatenate(users), np.concatenate(items), n_users, n_items


def test_lightgcn_beats_popularity_on_held_out_interactions():
    from imvae_jax.psg.lightgcn import final_embeddings, split_holdout, train_lightgcn

    users, items, nu, ni = clustered_interactions()
    train, held = split_holdout(users, items, ni, 0.2, seed=1)
    cfg = PSGConfig(dim=16, epochs=60, eval_every=20, batch_size=512, lr=1e-2, patience=10, seed=3)
    result = train_lightgcn(train, held, nu, ni, cfg)
    graph = build_graph(*train, nu, ni)
    user_emb, item_emb = final_embeddings(result.embeddings, graph, cfg.layers)
    train_csr, held_csr = user_item_csr(*train, nu, ni), user_item_csr(*held, nu, ni)
    ours = ranking_metrics(user_emb, item_emb, *train_csr, *held_csr, k=20)
    degree = np.bincount(train[1], minlength=ni).astype(np.float32)
    popularity = ranking_metrics(np.ones((nu, 1), np.float32), degree[:, None], *train_csr, *held_csr, k=20)
    assert ours["recall@20"] > popularity["recall@20"] + 0.1, (ours, popularity)
    assert ours["ndcg@20"] > popularity["ndcg@20"] + 0.05, (ours, popularity)
    assert result.history and np.isfinite([h["loss"] for h in result.history]).all()


def test_checkpoint_resume_continues_the_same_run(tmp_path):
    from imvae_jax.psg.lightgcn import split_holdout, train_lightgcn

    users, items, nu, ni = clustered_interactions(1, n_users=80, n_items=60, per_user=6)
    train, held = split_holdout(users, items, ni, 0.2, seed=0)
    base = dict(dim=8, eval_every=2, batch_size=64, patience=50, lr=1e-2)
    straight = train_lightgcn(train, held, nu, ni, PSGConfig(epochs=6, **base))
    train_lightgcn(train, held, nu, ni, PSGConfig(epochs=4, **base), tmp_path / "ckpt")
    with pytest.raises(FileExistsError):
        train_lightgcn(train, held, nu, ni, PSGConfig(epochs=6, **base), tmp_path / "ckpt")
    resumed = train_lightgcn(train, held, nu, ni, PSGConfig(epochs=6, **base), tmp_path / "ckpt", resume=True)
    assert resumed.epochs_run == 2
    assert [h["epoch"] for h in resumed.history] == [2, 4, 6]
    np.testing.assert_allclose(resumed.embeddings, straight.embeddings, rtol=1e-5, atol=1e-6)
    assert resumed.best_epoch == straight.best_epoch
    with pytest.raises(ValueError, match="different"):
        train_lightgcn(train, held, nu, ni, PSGConfig(epochs=8, **{**base, "lr": 5e-3}), tmp_path / "ckpt", resume=True)


def test_read_lightgcn_and_errors(tmp_path):
    from imvae_jax.psg.io import LightGCNFileError, read_lightgcn

    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(b"0 5 7\n3\n4 1\n"))
    users, items = read_lightgcn(path)
    assert users.tolist() == [0, 0, 4] and items.tolist() == [5, 7, 1]
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n2 x3\n")
    with pytest.raises(LightGCNFileError, match=r"bad.txt, line 2: 'x3'"):
        read_lightgcn(bad)
