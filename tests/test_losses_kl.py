"""Closed-form Gaussian KL and the array-level loss math, against independent references."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from imvae_jax.losses import kl_diag_gaussian
from imvae_jax.losses import terms as T
from imvae_jax.model.outputs import Gaussian


def _log_normal(z, mu, log_sigma):
    return -0.5 * ((z - mu) / np.exp(log_sigma)) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)


def test_kl_matches_monte_carlo():
    rng = np.random.default_rng(0)
    batch, dim, samples = 3, 4, 200_000
    mu_q, ls_q = rng.normal(size=(batch, dim)), 0.5 * rng.normal(size=(batch, dim))
    mu_p, ls_p = rng.normal(size=(dim,)), 0.5 * rng.normal(size=(dim,))  # a learned prior [d]
    closed = np.asarray(
        kl_diag_gaussian(Gaussian(jnp.asarray(mu_q), jnp.asarray(ls_q)), Gaussian(jnp.asarray(mu_p), jnp.asarray(ls_p)))
    )
    assert closed.shape == (batch,)
    z = mu_q[None] + np.exp(ls_q)[None] * rng.normal(size=(samples, batch, dim))
    log_ratio = (_log_normal(z, mu_q[None], ls_q[None]) - _log_normal(z, mu_p[None, None], ls_p[None, None])).sum(-1)
    estimate = log_ratio.mean(0)
    stderr = log_ratio.std(0) / math.sqrt(samples)
    assert np.all(np.abs(closed - estimate) < 4 * stderr), (closed, estimate, stderr)


def test_kl_known_values_and_broadcasting():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dim; KL(N(0, e^2) || N(0, 1)) = (e^2 - 1)/2 - 1 per dim
    q = Gaussian(jnp.ones((2, 3)), jnp.zeros((2, 3)))
    p = Gaussian(jnp.zeros((1, 3)), jnp.zeros((1, 3)))
    np.testing.assert_allclose(kl_diag_gaussian(q, p), [1.5, 1.5], rtol=1e-6)
    q = Gaussian(jnp.zeros((1, 2)), jnp.ones((1, 2)))
    np.testing.assert_allclose(kl_diag_gaussian(q, Gaussian(jnp.zeros(()), jnp.zeros(()))), [2 * ((math.e**2 - 1) / 2 - 1)], rtol=1e-6)
    # identical distributions: exactly 0; KL is asymmetric
    rng = np.random.default_rng(1)
    a = Gaussian(jnp.asarray(rng.normal(size=(4, 5))), jnp.asarray(rng.normal(size=(4, 5))))
    b = Gaussian(jnp.asarray(rng.normal(size=(4, 5))), jnp.asarray(rng.normal(size=(4, 5))))
    np.testing.assert_allclose(kl_diag_gaussian(a, a), np.zeros(4), atol=1e-6)
    assert np.all(np.asarray(kl_diag_gaussian(a, b)) > 0)
    assert not np.allclose(kl_diag_gaussian(a, b), kl_diag_gaussian(b, a))


def test_kl_numerically_safe_at_extremes():
    q = Gaussian(jnp.asarray([[1e3, -1e3]]), jnp.asarray([[-20.0, 15.0]]))
    p = Gaussian(jnp.asarray([[0.0, 0.0]]), jnp.asarray([[-20.0, 15.0]]))
    value = kl_diag_gaussian(q, p)
    # per dim: 0.5 * (mu / sigma_p)^2; the first is ~ 0.5 * 1e6 * e^40, finite in float32
    assert np.isfinite(np.asarray(value)).all()
    grads = jax.grad(lambda m: jnp.sum(kl_diag_gaussian(Gaussian(m, q.log_sigma), p)))(q.mu)
    assert np.isfinite(np.asarray(grads)).all()
    # bfloat16 inputs are computed in float32
    half = Gaussian(jnp.ones((1, 3), jnp.bfloat16), jnp.zeros((1, 3), jnp.bfloat16))
    assert kl_diag_gaussian(half, Gaussian(jnp.zeros(()), jnp.zeros(()))).dtype == jnp.float32


def test_adaptive_weight_endpoints():
    values = np.asarray(T.adaptive_weight(jnp.asarray([0, 10, 20]), 20))
    np.testing.assert_allclose(values, [0.2, math.exp(0.4) - 0.8, math.exp(0.8) - 0.8], rtol=1e-6)
    np.testing.assert_allclose(T.adaptive_weight(jnp.asarray([0, 7]), 20, a=0.0, b=0.0), [1.0, 1.0])


def test_bce_softmax_and_authors_bce_against_numpy():
    rng = np.random.default_rng(2)
    scores = rng.normal(scale=3.0, size=(5, 4))
    sig = 1 / (1 + np.exp(-scores))
    bce = -np.log(sig[:, 0]) - np.log(1 - sig[:, 1:]).sum(1)
    np.testing.assert_allclose(T.bce_with_logits(jnp.asarray(scores)), bce, rtol=1e-5)
    softmax = -np.log(np.exp(scores[:, 0]) / np.exp(scores).sum(1))
    np.testing.assert_allclose(T.sampled_softmax(jnp.asarray(scores)), softmax, rtol=1e-5)
    labels = np.zeros_like(scores)
    labels[:, 0] = 1
    torch_bce = -(labels * np.maximum(np.log(sig), -100) + (1 - labels) * np.maximum(np.log(1 - sig), -100))
    np.testing.assert_allclose(T.authors_bce(jnp.asarray(scores)), torch_bce.mean(1), rtol=1e-5)


def test_bce_stable_for_huge_logits():
    scores = jnp.asarray([[-500.0, 500.0], [500.0, -500.0]])
    np.testing.assert_allclose(T.bce_with_logits(scores), [1000.0, 0.0], atol=1e-4)
    # the authors' clamp: -log p capped at 100 per element, then the mean over the pair
    np.testing.assert_allclose(T.authors_bce(scores), [100.0, 0.0], atol=1e-4)
    for fn in (T.bce_with_logits, T.sampled_softmax, T.authors_bce):
        grads = jax.grad(lambda s: jnp.sum(fn(s)))(scores)
        assert np.isfinite(np.asarray(grads)).all()
