"""Gaussian encoders: every encoder returns ``(mu, log_sigma)``, each ``[B, d]``.

* :class:`GaussianMLP` - q(z^x|x), q(z_a^x|x_a), the r-encoders r^x(z_t^x|x) and the MLP
  cross-domain encoder q(z_t|x,y) on ``[X; Y]`` (paper 3.3.1).
* :class:`CrossAttentionEncoder` - q(z_t|x,y) from the un-pooled sequences: multi-head
  attention, LayerNorm, mean pooling over the query positions, then an MLP (paper 3.3.1).

The scale parameterisation is a pure function chosen per variant (:func:`log_sigma_paper`,
:func:`log_sigma_authors`); sampling is :func:`reparameterise`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from imvae_jax.model.layers import MLP, Key, LayerNorm, MultiHeadAttention, dropout, masked_mean
from imvae_jax.model.outputs import Gaussian

LogSigmaFn = Callable[[jax.Array], jax.Array]

# the authors' sigma(s) = exp(0.1 + 0.9 * softplus(min(s, 0.4))) (spec 2.5)
AUTHORS_SIGMA_FLOOR, AUTHORS_SIGMA_SLOPE, AUTHORS_SIGMA_CLAMP = 0.1, 0.9, 0.4


def log_sigma_paper(s: jax.Array) -> jax.Array:
    """The encoder's second half is log sigma itself."""
    return s


def log_sigma_authors(s: jax.Array) -> jax.Array:
    """log of the authors' sigma(s): ``0.1 + 0.9 softplus(min(s, 0.4))``, in [0.1, 0.9217].

    Values of ``s`` above 0.4 get zero gradient (which is why their prior scales never train).
    """
    return AUTHORS_SIGMA_FLOOR + AUTHORS_SIGMA_SLOPE * jax.nn.softplus(
        jnp.minimum(s, AUTHORS_SIGMA_CLAMP)
    )


def reparameterise(g: Gaussian, key: Key) -> jax.Array:
    """``mu + sigma * eps`` with ``eps ~ N(0, I)`` (Eq. 6); ``mu`` when ``key`` is None."""
    if key is None:
        return g.mu
    eps = jax.random.normal(key, g.mu.shape, g.mu.dtype)
    return g.mu + jnp.exp(g.log_sigma) * eps


def split_gaussian(out: jax.Array, log_sigma_fn: LogSigmaFn) -> Gaussian:
    """``[B, 2d]`` -> Gaussian(first half, log_sigma_fn(second half))."""
    d = out.shape[-1] // 2
    return Gaussian(out[..., :d], log_sigma_fn(out[..., d:]))


class GaussianMLP(nnx.Module):
    """``v [B, fan_in] -> (mu, log_sigma) [B, d]`` through an MLP with tanh hidden layers.

    ``normalize``: divide the input by its L2 norm first (the authors' ``F.normalize``);
    ``input_dropout``: dropout on the (normalised) input in training.
    """

    def __init__(
        self,
        fan_in: int,
        hidden: Sequence[int],
        dim: int,
        *,
        log_sigma_fn: LogSigmaFn,
        normalize: bool,
        input_dropout: float,
        rngs: nnx.Rngs,
        init: str = "torch",
    ):
        self.mlp = MLP(fan_in, hidden, 2 * dim, rngs=rngs, init=init)
        self.log_sigma_fn = log_sigma_fn
        self.normalize = normalize
        self.input_dropout = input_dropout

    def __call__(self, v: jax.Array, key: Key) -> Gaussian:
        if self.normalize:
            norm = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
            v = v / jnp.maximum(norm, 1e-12)
        v = dropout(v, self.input_dropout, key)
        return split_gaussian(self.mlp(v), self.log_sigma_fn)


class CrossAttentionEncoder(nnx.Module):
    """``MLP(Mean(LN(Attention(Q, K, V))))`` -> (mu, log_sigma) (paper 3.3.1).

    Which sequence plays query, key and value is the caller's choice (the paper and the
    authors' code differ, see :mod:`imvae_jax.model.imvae`). ``norm`` is passed in so that two
    encoders can share one LayerNorm (the authors' code does). Pooling is over the query
    positions, masked by ``query_padding`` (None: a plain mean).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        hidden: Sequence[int],
        *,
        log_sigma_fn: LogSigmaFn,
        rngs: nnx.Rngs,
    ):
        self.attention = MultiHeadAttention(dim, num_heads, rngs=rngs)
        self.head = MLP(dim, hidden, 2 * dim, rngs=rngs)
        self.log_sigma_fn = log_sigma_fn

    def __call__(
        self,
        query: jax.Array,
        key_in: jax.Array,
        value: jax.Array,
        *,
        norm: LayerNorm,
        query_padding: jax.Array | None,
        key_padding: jax.Array | None,
    ) -> Gaussian:
        """query ``[B, Lq, d]``, key/value ``[B, Lk, d]``; paddings ``[B, L]`` bool or None."""
        mask = None if key_padding is None else key_padding[:, None, :]
        attended = norm(self.attention(query, key_in, value, mask=mask))
        return split_gaussian(self.head(masked_mean(attended, query_padding)), self.log_sigma_fn)
