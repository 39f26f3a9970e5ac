"""Closed-form KL divergence between diagonal Gaussians parameterised by ``(mu, log_sigma)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from imvae_jax.model.outputs import Gaussian


def kl_diag_gaussian(q: Gaussian, p: Gaussian) -> jax.Array:
    """KL(q ‖ p) summed over the last axis: ``[B, d]`` -> ``[B]``.

    ``p`` may be any shape broadcastable to ``q`` (a learned prior ``[d]`` or ``[1, d]``, a
    scalar); broadcasting is explicit, so it also works under ``jax_numpy_rank_promotion=raise``.

    Per dimension, with ``r = log_sigma_q - log_sigma_p``::

        KL = log_sigma_p - log_sigma_q + (sigma_q^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - 1/2
           = 0.5 * (exp(2 r) + ((mu_q - mu_p) * exp(-log_sigma_p))^2 - 1) - r

    which never forms a variance on its own (no ``exp(2 log_sigma)`` that could under/overflow
    where only the ratio matters). Computed in float32 at least, whatever the input dtype.
    """
    dtype = jnp.promote_types(jnp.result_type(q.mu, q.log_sigma, p.mu, p.log_sigma), jnp.float32)
    shape = jnp.broadcast_shapes(
        jnp.shape(q.mu), jnp.shape(q.log_sigma), jnp.shape(p.mu), jnp.shape(p.log_sigma)
    )
    mu_q, ls_q, mu_p, ls_p = (
        jnp.broadcast_to(jnp.asarray(a, dtype), shape) for a in (q.mu, q.log_sigma, p.mu, p.log_sigma)
    )
    log_ratio = ls_q - ls_p
    scaled_diff = (mu_q - mu_p) * jnp.exp(-ls_p)
    per_dim = 0.5 * (jnp.exp(2.0 * log_ratio) + jnp.square(scaled_diff) - 1.0) - log_ratio
    return jnp.sum(per_dim, axis=-1)
