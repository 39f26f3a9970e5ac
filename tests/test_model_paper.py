"""Paper variant (and shared machinery): padding, causality, cold-start, shapes, jit, catalogue."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from imvae_jax.model.config import ModelConfig
from imvae_jax.model.imvae import build_model
from imvae_jax.model.outputs import LATENTS, POSTERIORS

D, T, P, NX, NY, K = 16, 8, 6, 30, 40, 5
CFG = ModelConfig(dim=D, max_len=T, pseudo_len=P, mlp_hidden=(8, 12, 8), scorer_hidden=8)


def authors_kwargs() -> dict:
    return {
        "source_ids_x": [None, *range(NX)],
        "source_ids_y": [None, *range(20, 20 + NY)],  # ten items shared with X
        "joint_size": 70,
    }


def make_batch(seed: int = 0, width: int = T, batch: int = 6) -> dict[str, np.ndarray]:
    """Rows: 0 short X history, 1 empty Y, 2 X cold-start, 3 Y cold-start, 4 no history, 5 full."""
    rng = np.random.default_rng(seed)
    seq_x = rng.integers(1, NX + 1, (batch, width)).astype(np.int32)
    seq_y = rng.integers(1, NY + 1, (batch, width)).astype(np.int32)
    seq_x[0, : width - 3] = 0
    seq_y[1] = 0
    seq_x[2] = 0
    seq_y[3] = 0
    seq_x[4] = seq_y[4] = 0
    pseudo_x = rng.integers(1, NX + 1, (batch, P)).astype(np.int32)
    pseudo_x[0, 4:] = 0
    target = np.array([0, 0, 0, 1, 1, 1], np.int32)
    candidates = np.where(
        target[:, None] == 0, rng.integers(1, NX + 1, (batch, K)), rng.integers(1, NY + 1, (batch, K))
    ).astype(np.int32)
    return {
        "seq_x": seq_x,
        "seq_y": seq_y,
        "pseudo_x": pseudo_x,
        "pseudo_y": rng.integers(1, NY + 1, (batch, P)).astype(np.int32),
        "target_domain": target,
        "candidates": candidates,
        "cold_start": np.array([False, False, True, True, True, False]),
    }


def left_pad(a: np.ndarray, extra: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (extra, 0)))


@pytest.fixture(scope="module")
def model():
    return build_model(CFG, n_items_x=NX, n_items_y=NY, seed=0)


def test_padding_changes_nothing(model):
    short = make_batch(width=5)
    long = dict(short, seq_x=left_pad(short["seq_x"], 3), seq_y=left_pad(short["seq_y"], 3))
    for domain in ("x", "y"):
        a = model.encode_sequence(jnp.asarray(short[f"seq_{domain}"]), jnp.asarray(short[f"pseudo_{domain}"]), domain, [None, None])
        b = model.encode_sequence(jnp.asarray(long[f"seq_{domain}"]), jnp.asarray(long[f"pseudo_{domain}"]), domain, [None, None])
        np.testing.assert_allclose(a[2], b[2], rtol=1e-5, atol=1e-6)  # pooled X
        np.testing.assert_allclose(a[3], b[3], rtol=1e-5, atol=1e-6)  # pooled X_a
    out_short, out_long = model(short, None), model(long, None)
    chex.assert_trees_all_close(out_short, out_long, rtol=1e-5, atol=1e-6)
    # the padding rows' contents are never read
    table = model.items.table[...]
    perturbed = nnx.clone(model)
    perturbed.items.table[...] = table.at[0].set(100.0).at[NX + 1].set(-100.0)
    chex.assert_trees_all_close(perturbed(long, None), out_long, rtol=1e-6, atol=1e-6)
    # an all-padding row pools to 0 with no NaN
    empty = model.encode_sequence(jnp.zeros((2, T), jnp.int32), jnp.zeros((2, P), jnp.int32), "x", [None, None])
    np.testing.assert_array_equal(empty[2], 0.0)
    np.testing.assert_array_equal(empty[3], 0.0)


def test_causal_mask(model):
    rng = np.random.default_rng(1)
    emb = jnp.asarray(rng.standard_normal((2, T, D)), jnp.float32)
    padding = jnp.ones((2, T), bool)
    later = emb.at[:, 5].add(1.0)
    a, b = model.encoder_x(emb, padding, None), model.encoder_x(later, padding, None)
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(a[:, 5:] - b[:, 5:])).min(axis=-1).max() > 1e-4  # later positions see it


def redrawn(batch: dict, seed: int) -> dict:
    """``batch`` with new random items in every history (same padding) and pseudo-sequence."""
    rng = np.random.default_rng(seed)
    return dict(
        batch,
        seq_x=np.where(batch["seq_x"] > 0, rng.integers(1, NX + 1, batch["seq_x"].shape), 0).astype(np.int32),
        pseudo_x=rng.integers(1, NX + 1, batch["pseudo_x"].shape).astype(np.int32),
        seq_y=np.where(batch["seq_y"] > 0, rng.integers(1, NY + 1, batch["seq_y"].shape), 0).astype(np.int32),
        pseudo_y=rng.integers(1, NY + 1, batch["pseudo_y"].shape).astype(np.int32),
    )


@pytest.mark.parametrize("key", [None, 0])
def test_cold_start_rows_use_the_r_encoder(model, key):
    batch = make_batch()
    perturbed = redrawn(batch, seed=5)
    # row 2 is X-cold-start (only its X inputs may change), row 3 Y-cold-start
    only_x = dict(batch, seq_x=perturbed["seq_x"], pseudo_x=perturbed["pseudo_x"])
    only_y = dict(batch, seq_y=perturbed["seq_y"], pseudo_y=perturbed["pseudo_y"])
    k = None if key is None else jax.random.key(key)
    base, ox, oy = model(batch, k), model(only_x, k), model(only_y, k)
    np.testing.assert_allclose(ox.scores[2], base.scores[2], rtol=1e-6)
    np.testing.assert_allclose(ox.h_x[2], base.h_x[2], rtol=1e-6)
    np.testing.assert_allclose(oy.scores[3], base.scores[3], rtol=1e-6)
    np.testing.assert_allclose(oy.h_y[3], base.h_y[3], rtol=1e-6)
    # and the same perturbation does reach warm rows
    assert not np.allclose(ox.scores[:2], base.scores[:2])
    assert not np.allclose(oy.scores[5], base.scores[5])
    # the cold row's X head is r^y's: its Y inputs matter
    assert not np.allclose(oy.scores[2], base.scores[2])


def test_single_domain_ablation_masks_cold_start_rows_like_imvae():
    """Without cross latents a cold-start row has nothing left: its target head is the same
    (input-free) vector whatever its sequences, while a warm row's head follows them."""
    ablation = build_model(ModelConfig(**{**CFG.__dict__, "use_cross_domain": False}), n_items_x=NX, n_items_y=NY, seed=0)
    batch = make_batch()
    other = redrawn(batch, seed=7)
    base, moved = ablation(batch), ablation(other)
    empty = ablation.head_x(jnp.zeros((1, CFG.dim)), None, jnp.zeros((1, CFG.dim)))[0][0]
    np.testing.assert_allclose(base.h_x[2], empty, rtol=1e-6, atol=1e-7)  # row 2: X cold-start
    np.testing.assert_allclose(moved.h_x[2], base.h_x[2], rtol=1e-6)
    np.testing.assert_allclose(moved.h_y[3], base.h_y[3], rtol=1e-6)  # row 3: Y cold-start
    assert not np.allclose(moved.h_x[5], base.h_x[5])  # row 5: warm


def test_cold_start_mask_own_keeps_the_pseudo_sequence():
    """``cold_start_mask='own'``: a cold-start row's head reads its pseudo-sequence, not its history."""
    model = build_model(ModelConfig(**{**CFG.__dict__, "cold_start_mask": "own"}), n_items_x=NX, n_items_y=NY, seed=0)
    batch = make_batch()
    other = redrawn(batch, seed=8)
    new_seq, new_pseudo = dict(batch, seq_x=other["seq_x"]), dict(batch, pseudo_x=other["pseudo_x"])
    base = model(batch)
    np.testing.assert_allclose(model(new_seq).h_x[2], base.h_x[2], rtol=1e-6)  # row 2: X cold-start
    assert not np.allclose(model(new_pseudo).h_x[2], base.h_x[2])
    with pytest.raises(ValueError, match="cold_start_mask"):
        build_model(ModelConfig(**{**CFG.__dict__, "cold_start_mask": "own", "variant": "authors"}), n_items_x=NX, n_items_y=NY, seed=0, **authors_kwargs())


VARIANTS = {
    "paper": (CFG, {}),
    "paper_mlp_cross": (ModelConfig(**{**CFG.__dict__, "cross_encoder": "mlp"}), {}),
    "paper_single_domain": (ModelConfig(**{**CFG.__dict__, "use_cross_domain": False}), {}),
    "authors": (ModelConfig(**{**CFG.__dict__, "variant": "authors", "pseudo_len": T}), authors_kwargs()),
    "authors_mlp_cross": (
        ModelConfig(**{**CFG.__dict__, "variant": "authors", "pseudo_len": T, "cross_encoder": "mlp"}),
        authors_kwargs(),
    ),
    "sasrec": (ModelConfig(**{**CFG.__dict__, "variant": "sasrec"}), {}),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_output_shapes_and_jit(name):
    cfg, kwargs = VARIANTS[name]
    model = build_model(cfg, n_items_x=NX, n_items_y=NY, seed=1, **kwargs)
    batch = make_batch()
    batch_size = batch["seq_x"].shape[0]
    # graph and tree mode: a plain jax.jit over split state (each compile costs seconds, so
    # the full grid only for the two main variants)
    main = name in ("paper", "authors")
    for graph in (True, False) if main else (True,):
        graphdef, state = nnx.split(model, graph=graph)

        @jax.jit
        def forward(state, batch, key):
            return nnx.merge(graphdef, state)(batch, key)

        for key in (None, jax.random.key(3)) if main else (jax.random.key(3),):
            out = forward(state, batch, key)
            chex.assert_shape(out.scores, (batch_size, K))
            chex.assert_shape([out.h_x, out.h_y], (batch_size, D))
            chex.assert_tree_all_finite(out)
            if cfg.variant == "sasrec":
                assert out.posteriors == {} and out.priors == {}
                continue
            expected = set(POSTERIORS) if cfg.use_cross_domain else {"z_x", "z_y", "z_a_x", "z_a_y"}
            assert set(out.posteriors) == expected
            assert set(out.priors) == (set(LATENTS) if cfg.use_cross_domain else expected)
            chex.assert_tree_shape_prefix(out.posteriors, (batch_size, D))
            for prior in out.priors.values():
                chex.assert_shape([prior.mu, prior.log_sigma], (1, D))
            if cfg.variant == "authors":
                chex.assert_shape([out.extras["disc_x"], out.extras["disc_y"]], (batch_size,))
            else:
                assert out.extras == {}
    # randomness comes only from the key
    k = jax.random.key(4)
    chex.assert_trees_all_close(forward(state, batch, k), forward(state, batch, k))
    assert not np.allclose(forward(state, batch, k).scores, forward(state, batch, jax.random.key(5)).scores)


@pytest.mark.parametrize("name", ["paper", "authors", "sasrec"])
def test_score_items_matches_scores_and_ranks_the_catalogue(name):
    cfg, kwargs = VARIANTS[name]
    model = build_model(cfg, n_items_x=NX, n_items_y=NY, seed=2, **kwargs)
    batch = make_batch()
    out = model(batch, None)
    for domain, h, n in ((0, out.h_x, NX), (1, out.h_y, NY)):
        rows = batch["target_domain"] == domain
        catalogue = model.score_items(h, jnp.arange(1, n + 1), "xy"[domain])
        chex.assert_shape(catalogue, (batch["seq_x"].shape[0], n))
        picked = np.take_along_axis(np.asarray(catalogue)[rows], batch["candidates"][rows] - 1, axis=1)
        np.testing.assert_allclose(picked, out.scores[rows], rtol=1e-5, atol=1e-5)


def test_paper_scores_are_dot_products(model):
    batch = make_batch()
    out = model(batch, None)
    table = np.asarray(model.items.table[...])
    for row in range(batch["seq_x"].shape[0]):
        if batch["target_domain"][row] == 0:
            emb, h = table[batch["candidates"][row]], out.h_x[row]
        else:
            emb, h = table[NX + 1 + batch["candidates"][row]], out.h_y[row]
        np.testing.assert_allclose(out.scores[row], emb @ np.asarray(h), rtol=1e-5, atol=1e-5)


def test_bad_widths_and_ids_raise():
    with pytest.raises(ValueError, match="exceed model.max_len"):
        build_model(CFG, n_items_x=NX, n_items_y=NY, seed=0)(make_batch(width=T + 1), None)
    with pytest.raises(ValueError, match="source_ids_x"):
        build_model(ModelConfig(variant="authors", dim=D), n_items_x=NX, n_items_y=NY, seed=0)
    with pytest.raises(ValueError, match=r"expected n_items \+ 1"):
        build_model(ModelConfig(variant="authors", dim=D), n_items_x=NX, n_items_y=NY, seed=0, source_ids_x=[None, 1], source_ids_y=[None, 2])


def test_given_latents_make_the_scores_user_independent(model):
    """With the same latents for every row, two rows of one target domain with the same
    candidates score them identically, whatever their histories; without, they differ."""
    batch = make_batch(seed=3)
    rows = [0, 1, 2]  # target X rows with different histories
    batch["candidates"][rows] = batch["candidates"][rows[0]]
    batch["cold_start"][:] = False
    free = np.asarray(model(batch).scores)[rows]
    assert np.abs(free[0] - free[2]).max() > 1e-4
    latents = {name: np.full((D,), 0.1 * i, np.float32) for i, name in enumerate(model(batch).posteriors)}
    shared = np.asarray(model(batch, latents=latents).scores)[rows]
    np.testing.assert_allclose(shared[1:], np.broadcast_to(shared[0], shared[1:].shape), rtol=0, atol=1e-6)
    with pytest.raises(KeyError, match="z_q"):
        model(batch, latents={"z_q": np.zeros(D, np.float32)})
