"""Building blocks: parameter-holding layers and the pure math they call.

Layers hold ``nnx.Param`` only; randomness (dropout) is an explicit ``key`` argument
(``None`` = evaluation, no dropout), so a plain ``jax.jit`` over ``nnx.split(model)`` works in
graph and tree mode. Weight layouts are the transposes of PyTorch's (``kernel [in, out]``), so
:mod:`imvae_jax.model.authors` ports the authors' ``state_dict`` with a transpose.

Shapes: ``B`` rows, ``L`` positions, ``d`` features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

Key = jax.Array | None
NEG_INF = -1e30  # finite "minus infinity": a fully masked softmax row stays finite


class IdMap(nnx.Variable):
    """A constant integer lookup held by a module (not trained, not an ``nnx.Param``)."""


# ----------------------------------------------------------------------------- pure functions
def lead(v: jax.Array, ndim: int) -> jax.Array:
    """``v`` with leading size-1 axes up to ``ndim`` (explicit broadcasting under rank
    promotion = raise)."""
    return v.reshape((1,) * (ndim - v.ndim) + v.shape)


def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x [..., in] @ w [in, out]`` as one 2-D GEMM (XLA:CPU's weight gradient of a 3-D
    ``dot_general`` contracting two axes is ~2.5x slower than the flattened one)."""
    if x.ndim <= 2:
        return x @ w
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def split_key(key: Key, n: int) -> list[Key]:
    """``n`` independent keys, or ``n`` Nones in evaluation mode."""
    if key is None:
        return [None] * n
    return list(jax.random.split(key, n))


def _hash32(x: jax.Array) -> jax.Array:
    """lowbias32 integer hash (C. Wellons): a well-mixed bijection of uint32."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniform_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """uint32 pseudo-random bits of ``shape``: two rounds of a counter hash keyed by 64 bits
    drawn from ``key``. About 15x cheaper than threefry on CPU and fused into the consumer;
    a function of (key, global position) only, so it does not depend on sharding."""
    seed = jax.random.bits(key, (2,), jnp.uint32)
    index = jax.lax.broadcasted_iota(jnp.uint32, shape, 0)
    for axis in range(1, len(shape)):
        index = index * jnp.uint32(shape[axis]) + jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
    return _hash32(_hash32(index ^ seed[0]) + seed[1])


def dropout(x: jax.Array, rate: float, key: Key) -> jax.Array:
    """Inverted dropout (masks from :func:`uniform_bits`); identity when ``key`` is None or
    ``rate`` is 0. The drop probability is ``rate`` to within 2^-32."""
    if key is None or rate <= 0.0:
        return x
    threshold = min(int(round(rate * 2**32)), 2**32 - 1)
    keep_prob = 1.0 - threshold / 2**32
    keep = uniform_bits(key, x.shape) >= jnp.uint32(threshold)
    return jnp.where(keep, x * jnp.asarray(1.0 / keep_prob, x.dtype), jnp.zeros((), x.dtype))


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    """LayerNorm over the last axis (biased variance, two-pass, as PyTorch)."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(centred * centred, axis=-1, keepdims=True)
    return centred * jax.lax.rsqrt(var + eps) * lead(scale, x.ndim) + lead(bias, x.ndim)


def masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean over axis 1 of ``x [B, L, d]`` where ``mask [B, L]`` is true; 0 for an empty row.

    ``mask=None`` averages over every position (padding included, the authors' pooling).
    """
    if mask is None:
        return jnp.mean(x, axis=1)
    m = mask.astype(x.dtype)[:, :, None]
    count = jnp.sum(m, axis=1)
    return jnp.sum(x * m, axis=1) / jnp.maximum(count, 1.0)


def attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    *,
    num_heads: int,
    mask: jax.Array | None = None,
    rate: float = 0.0,
    key: Key = None,
) -> jax.Array:
    """Scaled dot-product attention on projected inputs.

    q ``[B, Lq, d]``, k and v ``[B, Lk, d]``, ``mask`` boolean broadcastable to ``[B, Lq, Lk]``
    (true = may attend). A query row with no allowed key gets a zero output (no NaN).
    Dropout ``rate`` applies to the attention probabilities (PyTorch MHA semantics).
    """
    batch, lq, d = q.shape
    lk = k.shape[1]
    dh = d // num_heads
    scale = 1.0 / math.sqrt(dh)
    if num_heads == 1:
        logits = jnp.einsum("bqd,bkd->bqk", q * scale, k)
        if mask is not None:
            logits = jnp.where(mask, logits, NEG_INF)
        probs = jax.nn.softmax(logits, axis=-1)
        if mask is not None:
            probs = jnp.where(mask, probs, 0.0)
        probs = dropout(probs, rate, key)
        return jnp.einsum("bqk,bkd->bqd", probs, v)
    qh = (q * scale).reshape(batch, lq, num_heads, dh)
    kh = k.reshape(batch, lk, num_heads, dh)
    vh = v.reshape(batch, lk, num_heads, dh)
    logits = jnp.einsum("bqhe,bkhe->bhqk", qh, kh)
    if mask is not None:
        mask = mask[:, None]
        logits = jnp.where(mask, logits, NEG_INF)
    probs = jax.nn.softmax(logits, axis=-1)
    if mask is not None:
        probs = jnp.where(mask, probs, 0.0)
    probs = dropout(probs, rate, key)
    return jnp.einsum("bhqk,bkhe->bqhe", probs, vh).reshape(batch, lq, d)


def causal_mask(length: int) -> jax.Array:
    """``[1, L, L]`` boolean: position t may attend to positions <= t."""
    return jnp.tril(jnp.ones((length, length), dtype=bool))[None]


# ----------------------------------------------------------------------------- initialisers
def torch_uniform(fan_in: int) -> Callable:
    """PyTorch's default Linear/Conv1d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def normal(std: float) -> Callable:
    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return std * jax.random.normal(key, shape, dtype)

    return init


def uniform(bound: float) -> Callable:
    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# ----------------------------------------------------------------------------- layers
class Dense(nnx.Module):
    """``y = x @ kernel + bias``; ``kernel [in, out]``. Default init is PyTorch's.

    ``init="xavier"`` draws the kernel from N(0, 2/(in+out)) and the bias from N(0, 0.001^2)
    (the authors' init of their X encoder and decoder, spec 2.13).
    """

    def __init__(self, fan_in: int, fan_out: int, *, rngs: nnx.Rngs, init: str = "torch"):
        if init == "torch":
            kernel_init = bias_init = torch_uniform(fan_in)
        elif init == "xavier":
            kernel_init, bias_init = normal(math.sqrt(2.0 / (fan_in + fan_out))), normal(1e-3)
        else:
            raise ValueError(f"unknown Dense init {init!r}")
        self.kernel = nnx.Param(kernel_init(rngs.params(), (fan_in, fan_out)))
        self.bias = nnx.Param(bias_init(rngs.params(), (fan_out,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return matmul(x, self.kernel[...]) + lead(self.bias[...], x.ndim)


class LayerNorm(nnx.Module):
    """Affine LayerNorm over the last axis (scale 1, bias 0 at init)."""

    def __init__(self, dim: int, *, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        return layer_norm(x, self.scale[...], self.bias[...], self.eps)


class MLP(nnx.Module):
    """``Dense -> act -> ... -> Dense``: hidden sizes ``hidden``, tanh between layers."""

    def __init__(
        self, fan_in: int, hidden: Sequence[int], fan_out: int, *, rngs: nnx.Rngs, init: str = "torch"
    ):
        sizes = [fan_in, *hidden, fan_out]
        self.layers = nnx.List(
            [Dense(a, b, rngs=rngs, init=init) for a, b in zip(sizes[:-1], sizes[1:])]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


class MultiHeadAttention(nnx.Module):
    """PyTorch-layout multi-head attention: one ``in_kernel [d, 3d]`` (q, k, v) and ``out``.

    Inputs that are the same array are projected together (one matmul for k and v of a
    self-attention). Init as ``nn.MultiheadAttention``: in-projection Xavier-uniform over the
    whole ``[3d, d]`` matrix, zero biases, output kernel U(±1/sqrt(d)).
    """

    def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        bound = math.sqrt(6.0 / (4 * dim))
        self.in_kernel = nnx.Param(uniform(bound)(rngs.params(), (dim, 3 * dim)))
        self.in_bias = nnx.Param(jnp.zeros((3 * dim,), jnp.float32))
        self.out_kernel = nnx.Param(torch_uniform(dim)(rngs.params(), (dim, dim)))
        self.out_bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        self.num_heads = num_heads

    def __call__(
        self,
        query: jax.Array,
        key_in: jax.Array,
        value: jax.Array,
        *,
        mask: jax.Array | None = None,
        rate: float = 0.0,
        key: Key = None,
    ) -> jax.Array:
        d = query.shape[-1]
        w, b = self.in_kernel[...], self.in_bias[...]
        b = lead(b, 3)

        def project(x: jax.Array, start: int, stop: int) -> jax.Array:
            return matmul(x, w[:, start:stop]) + b[..., start:stop]

        if key_in is value:
            q = project(query, 0, d)
            kv = project(key_in, d, 3 * d)
            k, v = kv[..., :d], kv[..., d:]
        elif query is value:
            qv = matmul(query, jnp.concatenate([w[:, :d], w[:, 2 * d :]], axis=1))
            qv = qv + jnp.concatenate([b[..., :d], b[..., 2 * d :]], axis=-1)
            q, v = qv[..., :d], qv[..., d:]
            k = project(key_in, d, 2 * d)
        else:
            q, k, v = project(query, 0, d), project(key_in, d, 2 * d), project(value, 2 * d, 3 * d)
        out = attention(q, k, v, num_heads=self.num_heads, mask=mask, rate=rate, key=key)
        return matmul(out, self.out_kernel[...]) + lead(self.out_bias[...], 3)


class SASRecBlock(nnx.Module):
    """One SASRec block: ``q = LN(x); x = q + MHA(q, x, x); x = LN(x); x = x + FFN(x)``.

    The FFN is two point-wise ``d x d`` layers (the 1x1 convolutions of SASRec) with ReLU and
    dropout before and after the ReLU-ed hidden layer.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.attention_norm = LayerNorm(dim, eps=1e-8)
        self.attention = MultiHeadAttention(dim, num_heads, rngs=rngs)
        self.ffn_norm = LayerNorm(dim, eps=1e-8)
        self.ffn_in = Dense(dim, dim, rngs=rngs)
        self.ffn_out = Dense(dim, dim, rngs=rngs)
        self.rate = dropout

    def __call__(self, x: jax.Array, mask: jax.Array, key: Key) -> jax.Array:
        """``x [B, L, d]``, ``mask`` boolean broadcastable to ``[B, L, L]`` -> ``[B, L, d]``."""
        k_att, k_in, k_out = split_key(key, 3)
        q = self.attention_norm(x)
        x = q + self.attention(q, x, x, mask=mask, rate=self.rate, key=k_att)
        x = self.ffn_norm(x)
        hidden = jax.nn.relu(dropout(self.ffn_in(x), self.rate, k_in))
        return x + dropout(self.ffn_out(hidden), self.rate, k_out)


class SequenceEncoder(nnx.Module):
    """SASRec self-attention stack: dropout, ``num_blocks`` causal blocks, final LayerNorm.

    With ``padding`` (``[B, L]`` bool, true = real item) padding keys are masked and padding
    positions are zeroed after the input and after every block (as SASRec does), so padding
    never changes a real position. ``padding=None`` is the authors' encoder (causal mask only).
    """

    def __init__(self, dim: int, num_blocks: int, num_heads: int, dropout: float, *, rngs: nnx.Rngs):
        self.blocks = nnx.List([SASRecBlock(dim, num_heads, dropout, rngs=rngs) for _ in range(num_blocks)])
        self.last_norm = LayerNorm(dim, eps=1e-8)
        self.rate = dropout

    def __call__(self, x: jax.Array, padding: jax.Array | None, key: Key) -> jax.Array:
        """``x [B, L, d]`` embedded inputs -> ``[B, L, d]``."""
        keys = split_key(key, len(self.blocks) + 1)
        x = dropout(x, self.rate, keys[0])
        mask = causal_mask(x.shape[1])
        if padding is not None:
            keep = padding[:, :, None].astype(x.dtype)
            mask = mask & padding[:, None, :]
            x = x * keep
        for block, k in zip(self.blocks, keys[1:]):
            x = block(x, mask, k)
            if padding is not None:
                x = x * keep
        return self.last_norm(x)
