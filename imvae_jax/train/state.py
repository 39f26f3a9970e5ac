"""The train state: one pytree (parameters, optimiser state, step, RNG key) and the optimiser.

The NNX model is split once into ``(graphdef, params, rest)``: ``graphdef`` is static Python
structure, ``params`` the ``nnx.Param`` leaves (trained), ``rest`` every other variable (e.g.
the item id maps, constant). The jitted step rebuilds the module with ``nnx.merge`` inside the
trace, so it is a pure function of pytrees and works in NNX graph and tree mode alike.

The key is stored as raw ``uint32 [2]`` key data (checkpoint-friendly); the step derives each
step's key as ``fold_in(key, step)``, so randomness is a function of (seed, step) only.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from imvae_jax.train.config import TrainConfig


class TrainState(NamedTuple):
    """``step`` int32 ``[]``; ``params``/``rest`` ``nnx.State``; ``opt_state`` optax; ``key`` uint32 ``[2]``."""

    step: jax.Array
    params: Any
    rest: Any
    opt_state: Any
    key: jax.Array


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Adam (betas 0.9/0.999, eps 1e-8, as the authors'); AdamW when ``weight_decay > 0``;
    global-norm clipping first when ``grad_clip_norm > 0``. The same settings return the same
    object (so a memoised compiled step is reused)."""
    if cfg.learning_rate <= 0:
        raise ValueError(f"train.learning_rate must be > 0, got {cfg.learning_rate}")
    if cfg.weight_decay < 0 or cfg.grad_clip_norm < 0:
        raise ValueError("train.weight_decay and train.grad_clip_norm must be >= 0")
    return _optimizer(float(cfg.learning_rate), float(cfg.weight_decay), float(cfg.grad_clip_norm))


@functools.lru_cache(maxsize=16)
def _optimizer(learning_rate: float, weight_decay: float, grad_clip_norm: float) -> optax.GradientTransformation:
    if weight_decay > 0:
        tx = optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
    else:
        tx = optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)
    if grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(grad_clip_norm), tx)
    return tx


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, Any, Any]:
    """``(graphdef, params, rest)``: trained ``nnx.Param`` leaves and every other variable."""
    return nnx.split(model, nnx.Param, ...)


def init_state(params: Any, rest: Any, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """A fresh state at step 0; the run's key is ``key(seed)`` folded with a constant stream id."""
    key = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 0x7EA1))
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, rest=rest, opt_state=tx.init(params), key=key
    )


def create(
    model_factory: Callable[[], nnx.Module], tx: optax.GradientTransformation, seed: int
) -> tuple[nnx.GraphDef, TrainState]:
    """Build the model and its state: ``(graphdef, state)`` (host arrays, not yet placed)."""
    graphdef, params, rest = split_model(model_factory())
    return graphdef, init_state(params, rest, tx, seed)


def num_params(params: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
