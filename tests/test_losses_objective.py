"""Recipes of the objective against independent NumPy transcriptions (paper 3.4.5, spec 3.3).

Model outputs are hand-built from random arrays; the model code is not used.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imvae_jax.losses import LossConfig, Term, make_objective, recipe, recipe_names, register_recipe
from imvae_jax.losses import terms as T
from imvae_jax.model.outputs import LATENTS, POSTERIORS, Gaussian, ModelOutputs

B, D, C, SEQ = 6, 5, 3, 8
LAMBDA_T, LAMBDA_A = 0.3, 0.2  # large, so a wrong weight shows


# ------------------------------------------------------------------------------------ fixtures
def make_case(seed: int = 0, batch: int = B, authors_sigma: bool = False):
    """Random outputs (as float64 NumPy) and a batch with both target domains."""
    rng = np.random.default_rng(seed)

    def log_sigma(shape):
        s = rng.normal(size=shape)
        # authors variant: the model hands over log sigma(s) = 0.1 + 0.9 softplus(min(s, 0.4))
        return 0.1 + 0.9 * np.log1p(np.exp(np.minimum(s, 0.4))) if authors_sigma else 0.5 * s

    post = {n: (rng.normal(size=(batch, D)), log_sigma((batch, D))) for n in POSTERIORS}
    prior = {n: (rng.normal(size=(D,)), log_sigma((D,))) for n in LATENTS}
    np_out = {
        "post": post,
        "prior": prior,
        "scores": rng.normal(scale=2.0, size=(batch, C)),
        "disc_x": rng.normal(size=(batch,)),
        "disc_y": rng.normal(size=(batch,)),
    }
    np_batch = {
        "mask": np.ones(batch, np.float32),
        "target_domain": np.resize(np.asarray([0, 1, 0], np.int32), batch),
        "len_x": rng.integers(0, SEQ + 1, size=batch).astype(np.int32),
        "len_y": rng.integers(0, SEQ + 1, size=batch).astype(np.int32),
        "seq_x": np.zeros((batch, SEQ), np.int32),
        "seq_y": np.zeros((batch, SEQ), np.int32),
        "tailed": np.resize(np.asarray([True, False, False, True]), batch),
    }
    return np_out, np_batch


def to_outputs(np_out, drop: tuple[str, ...] = ()) -> ModelOutputs:
    f = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    return ModelOutputs(
        posteriors={n: Gaussian(f(m), f(s)) for n, (m, s) in np_out["post"].items() if n not in drop},
        priors={n: Gaussian(f(m), f(s)) for n, (m, s) in np_out["prior"].items() if n not in drop},
        scores=f(np_out["scores"]),
        h_x=jnp.zeros((len(np_out["scores"]), D)),
        h_y=jnp.zeros((len(np_out["scores"]), D)),
        extras={"disc_x": f(np_out["disc_x"]), "disc_y": f(np_out["disc_y"])},
    )


def to_batch(np_batch):
    return {k: jnp.asarray(v) for k, v in np_batch.items()}


def cfg(**kw) -> LossConfig:
    return LossConfig(**{"lambda_t": LAMBDA_T, "lambda_a": LAMBDA_A, **kw})


# --------------------------------------------------------------------------- NumPy references
def np_kl(q, p):
    (m1, l1), (m2, l2) = q, p
    s1, s2 = np.exp(l1), np.exp(l2)
    return (np.log(s2) - np.log(s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum(-1)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_rows(np_out, np_batch, recipe_name, reconstruction="bce", skip=()):
    """Per-row loss [B] of a paper recipe, written out from the paper's overall objective."""
    post, prior = np_out["post"], np_out["prior"]
    s = np_out["scores"]
    if reconstruction == "bce":
        rec = -np.log(np_sigmoid(s[:, 0])) - np.log(1 - np_sigmoid(s[:, 1:])).sum(1)
    else:
        rec = -np.log(np.exp(s[:, 0]) / np.exp(s).sum(1))
    full = recipe_name in ("imvae", "no_dn")
    factor = 1 + LAMBDA_T if full else 1.0
    rows = factor * rec
    if recipe_name == "reconstruction":
        return rows
    for d, o, td in (("x", "y", 0), ("y", "x", 1)):
        on = (np_batch["target_domain"] == td).astype(float)
        side = factor * np_kl(post[f"z_{d}"], prior[f"z_{d}"]) + np_kl(post[f"z_a_{d}"], prior[f"z_a_{d}"])
        if "cross" not in skip:
            side = side + np_kl(post[f"z_t_{o}"], prior[f"z_t_{o}"])
        if full and "cross" not in skip:
            side = side + LAMBDA_T * np_kl(post[f"z_t_{o}"], post[f"r_{o}"])
        if recipe_name in ("imvae", "no_if_ds"):
            lam_d = np.exp(0.8 * np_batch[f"len_{d}"] / SEQ) - 0.8
            side = side + LAMBDA_A * lam_d * np_kl(post[f"z_{d}"], post[f"z_a_{d}"])  # "+" in both domains
        rows = rows + on * side
    return rows


def np_authors_loss(np_out, np_batch):
    """Spec 3.3 transcribed: probabilities + torch BCE clamp, and the code's [B, B] broadcasts."""
    post, prior = np_out["post"], np_out["prior"]
    batch = len(np_out["scores"])
    p = np_sigmoid(np_out["scores"][:, :2])  # (pos, neg); one training negative
    y = np.asarray([1.0, 0.0])[None]
    bce = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
    l_cls = bce.sum() / (2 * batch)
    m = 1.0 - np_batch["target_domain"]
    n = np_batch["target_domain"].astype(float)
    tau = 1.0 - np_batch["tailed"]
    a_x, a_y = np_sigmoid(np_out["disc_x"]), np_sigmoid(np_out["disc_y"])
    per_row = m * -np.log(a_x) + n * -np.log(a_y)
    l_disc = np.mean(per_row[:, None] * tau[None, :])  # (B,1)·(B) -> (B,B)

    def kl_bar(q, pr):  # _kld_gauss: summed over dims, averaged over all rows
        return np_kl(q, pr).mean()

    g_x = kl_bar(post["z_t_y"], prior["z_t_y"]) + kl_bar(post["z_x"], prior["z_x"]) + kl_bar(post["z_a_x"], prior["z_a_x"])
    g_y = kl_bar(post["z_t_x"], prior["z_t_x"]) + kl_bar(post["z_y"], prior["z_y"]) + kl_bar(post["z_a_y"], prior["z_a_y"])
    t_x, t_y = kl_bar(post["z_t_y"], post["r_y"]), kl_bar(post["z_t_x"], post["r_x"])
    a_kl_x, a_kl_y = kl_bar(post["z_a_x"], post["z_x"]), kl_bar(post["z_a_y"], post["z_y"])
    w_x = np.exp(0.8 * np_batch["len_x"] / SEQ) - 0.8
    w_y = np.exp(0.8 * np_batch["len_y"] / SEQ) - 0.8
    kl_x = g_x + LAMBDA_A * w_x[:, None] * a_kl_x + LAMBDA_T * t_x  # [B, 1]
    kl_y = g_y + LAMBDA_A * w_y[:, None] * a_kl_y + LAMBDA_T * t_y
    l_kl = np.mean(m[None, :] * kl_x + n[None, :] * kl_y)  # (B)·(B,1) -> (B,B)
    return l_cls + 0.1 * l_disc + l_kl


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", ["imvae", "no_if_ds", "no_dn", "elbo", "reconstruction"])
@pytest.mark.parametrize("reconstruction", ["bce", "softmax"])
def test_paper_recipes_match_numpy(name, reconstruction):
    np_out, np_batch = make_case(seed=3)
    objective = make_objective(cfg(recipe=name, reconstruction=reconstruction))
    loss, aux = objective(to_outputs(np_out), to_batch(np_batch))
    expected = np_rows(np_out, np_batch, name, reconstruction).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(sum(float(v) for v in aux.values()), float(loss), rtol=1e-6)
    assert set(aux) == {t.name for t in recipe(name)}


def test_imvae_recipe_terms_and_weights():
    objective = make_objective(cfg())
    weights = {t.name: t.weight for t in objective.terms}
    assert weights == pytest.approx(
        {
            "reconstruction": 1 + LAMBDA_T, "kl_z_x": 1 + LAMBDA_T, "kl_z_y": 1 + LAMBDA_T,
            "kl_z_t_y": 1.0, "kl_z_t_x": 1.0, "kl_z_a_x": 1.0, "kl_z_a_y": 1.0,
            "if_ds_x": LAMBDA_T, "if_ds_y": LAMBDA_T, "denoise_x": LAMBDA_A, "denoise_y": LAMBDA_A,
        }
    )
    assert {t.name for t in make_objective(cfg(recipe="no_dn")).terms} == set(weights) - {"denoise_x", "denoise_y"}


def test_denoising_adds_in_both_domains():
    # the sign decision: pushing q(z_a^y) away from q(z^y) must *raise* the loss on Y rows
    np_out, np_batch = make_case(seed=4)
    objective = make_objective(cfg())
    base, aux = objective(to_outputs(np_out), to_batch(np_batch))
    assert float(aux["denoise_x"]) > 0 and float(aux["denoise_y"]) > 0
    np_out["post"]["z_a_y"] = (np_out["post"]["z_a_y"][0] + 3.0, np_out["post"]["z_a_y"][1])
    moved, _ = objective(to_outputs(np_out), to_batch(np_batch))
    assert float(moved) > float(base)


def test_authors_recipe_matches_spec_closed_forms():
    np_out, np_batch = make_case(seed=5, authors_sigma=True)
    np_out["scores"] = np_out["scores"][:, :2]
    objective = make_objective(cfg(recipe="authors"))
    loss, aux = objective(to_outputs(np_out), to_batch(np_batch))
    np.testing.assert_allclose(float(loss), np_authors_loss(np_out, np_batch), rtol=1e-5)
    assert set(aux) == {t.name for t in recipe("authors")}
    assert "discriminator" in aux


@pytest.mark.parametrize("name", ["imvae", "no_if_ds", "no_dn", "elbo", "reconstruction", "authors"])
def test_padding_rows_change_nothing(name):
    np_out, np_batch = make_case(seed=6, authors_sigma=name == "authors")
    real = make_objective(cfg(recipe=name))(to_outputs(np_out), to_batch(np_batch))
    # append 3 padding rows carrying garbage (NaN outputs, odd domains, lengths, tails)
    pad_out, pad_batch = make_case(seed=7, batch=3)
    pad_out["scores"][:] = np.nan
    pad_out["post"]["z_x"] = (np.full((3, D), np.nan), pad_out["post"]["z_x"][1])
    pad_batch["mask"][:] = 0
    pad_batch["target_domain"][:] = 1
    pad_batch["tailed"][:] = False
    joined_out = {
        "post": {n: tuple(np.concatenate([a, b]) for a, b in zip(np_out["post"][n], pad_out["post"][n])) for n in POSTERIORS},
        "prior": np_out["prior"],
        **{k: np.concatenate([np_out[k], pad_out[k]]) for k in ("scores", "disc_x", "disc_y")},
    }
    joined_batch = {k: np.concatenate([np_batch[k], pad_batch[k]]) for k in np_batch}
    padded = make_objective(cfg(recipe=name))(to_outputs(joined_out), to_batch(joined_batch))
    np.testing.assert_allclose(float(padded[0]), float(real[0]), rtol=1e-6)
    for key in real[1]:
        np.testing.assert_allclose(float(padded[1][key]), float(real[1][key]), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["imvae", "no_if_ds", "no_dn", "elbo", "reconstruction", "authors"])
def test_every_term_has_finite_gradients(name):
    np_out, np_batch = make_case(seed=8, authors_sigma=name == "authors")
    np_out["scores"] = np_out["scores"] * 50.0  # saturated logits too
    objective = make_objective(cfg(recipe=name))
    outputs, batch = to_outputs(np_out), to_batch(np_batch)
    for term in objective.terms:
        grads = jax.grad(lambda o: objective(o, batch)[1][term.name])(outputs)
        leaves = jax.tree_util.tree_leaves(grads)
        assert all(np.isfinite(np.asarray(g)).all() for g in leaves), term.name
        assert any(np.abs(np.asarray(g)).sum() > 0 for g in leaves), term.name


def test_jit_matches_eager():
    np_out, np_batch = make_case(seed=9)
    objective = make_objective(cfg())
    outputs, batch = to_outputs(np_out), to_batch(np_batch)
    eager_loss, eager_aux = objective(outputs, batch)
    jit_loss, jit_aux = jax.jit(objective)(outputs, batch)
    np.testing.assert_allclose(float(jit_loss), float(eager_loss), rtol=1e-6)
    assert set(jit_aux) == set(eager_aux)


def test_missing_cross_domain_outputs_are_skipped_or_rejected():
    np_out, np_batch = make_case(seed=10)
    no_cross = to_outputs(np_out, drop=("z_t_x", "z_t_y", "r_x", "r_y"))
    objective = make_objective(cfg())
    assert {t.name for t in objective.active(no_cross)} == {
        "reconstruction", "kl_z_x", "kl_z_y", "kl_z_a_x", "kl_z_a_y", "denoise_x", "denoise_y"
    }
    loss, _ = objective(no_cross, to_batch(np_batch))
    np.testing.assert_allclose(float(loss), np_rows(np_out, np_batch, "imvae", skip=("cross",)).mean(), rtol=1e-5)
    # SASRec: no latents at all -> only the reconstruction
    sasrec = to_outputs(np_out)._replace(posteriors={}, priors={}, extras={})
    loss, aux = objective(sasrec, to_batch(np_batch))
    assert list(aux) == ["reconstruction"]
    with pytest.raises(ValueError, match="kl_z_t_y.*posteriors.z_t_y"):
        make_objective(cfg(on_missing="error"))(no_cross, to_batch(np_batch))


def test_config_errors_are_clear():
    np_out, np_batch = make_case(seed=11)
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        make_objective(cfg(recipe="nope"))
    with pytest.raises(ValueError, match=r"\['kl_typo'\] are not in recipe 'imvae'"):
        make_objective(cfg(weights={"kl_typo": 1.0}))
    with pytest.raises(ValueError, match="finite number"):
        make_objective(cfg(weights={"kl_z_x": "lots"}))
    with pytest.raises(ValueError, match="authors"):
        make_objective(cfg(recipe="authors", reconstruction="softmax"))
    batch = to_batch(np_batch)
    del batch["len_y"]
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['len_y'\]"):
        make_objective(cfg())(to_outputs(np_out), batch)


def test_weight_overrides_and_new_recipe():
    np_out, np_batch = make_case(seed=12)
    outputs, batch = to_outputs(np_out), to_batch(np_batch)
    base = make_objective(cfg())(outputs, batch)[1]
    # overriding a weight rescales exactly that term; weight 0 drops it
    aux = make_objective(cfg(weights={"denoise_x": 2 * LAMBDA_A, "if_ds_y": 0.0}))(outputs, batch)[1]
    np.testing.assert_allclose(float(aux["denoise_x"]), 2 * float(base["denoise_x"]), rtol=1e-6)
    assert "if_ds_y" not in aux
    np.testing.assert_allclose(float(aux["kl_z_x"]), float(base["kl_z_x"]), rtol=1e-6)
    # a new recipe in a few lines: the ELBO plus X's informative term at its own weight
    name = "test_elbo_plus_if_x"
    if name not in recipe_names():
        register_recipe(name, [*recipe("elbo"), Term("if_ds_x", T.informative_disentangle("x"), 0.5, domain="x",
                                                     requires=("posteriors.z_t_y", "posteriors.r_y"))])
    with pytest.raises(ValueError, match="already registered"):
        register_recipe(name, recipe("elbo"))
    loss, aux = make_objective(cfg(recipe=name))(outputs, batch)
    on_x = np_batch["target_domain"] == 0
    extra = 0.5 * (on_x * np_kl(np_out["post"]["z_t_y"], np_out["post"]["r_y"])).mean()
    np.testing.assert_allclose(float(loss), np_rows(np_out, np_batch, "elbo").mean() + extra, rtol=1e-5)
    with pytest.raises(ValueError, match="duplicate"):
        register_recipe("test_dup", [recipe("elbo")[0], recipe("elbo")[0]])


def test_all_padding_batch_gives_zero_loss():
    np_out, np_batch = make_case(seed=13)
    np_batch["mask"][:] = 0
    for name in ("imvae", "authors"):
        loss, _ = make_objective(cfg(recipe=name))(to_outputs(np_out), to_batch(np_batch))
        assert float(loss) == 0.0
        assert math.isfinite(float(loss))
