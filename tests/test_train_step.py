"""The jitted train step: one compile, Adam against NumPy, padding, 1 vs 8 devices."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from imvae_jax.train.config import TrainConfig
from imvae_jax.train.state import TrainState, create, make_optimizer
from imvae_jax.train.step import Parallel, make_train_step, pad_batch


# ----------------------------------------------------------------------------- a toy model
class Linear(nnx.Module):
    """``pred = x . w + b``, plus a constant non-Param variable (like the item id maps)."""

    def __init__(self, features: int, seed: int):
        key = jax.random.key(seed)
        self.w = nnx.Param(jax.random.normal(key, (features,)) * 0.1)
        self.b = nnx.Param(jnp.zeros(()))
        self.offset = nnx.Variable(jnp.asarray(0.5))  # not trained

    def __call__(self, batch, key=None):
        return batch["x"] @ self.w[...] + self.b[...] + self.offset[...]


def mse(pred, batch):
    mask = batch["mask"]
    loss = jnp.sum(mask * (pred - batch["y"]) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)
    return loss, {"mse": loss}


def toy_batches(n_batches: int, size: int, features: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_batches):
        out.append(
            {
                "x": rng.standard_normal((size, features)).astype(np.float32),
                "y": rng.standard_normal(size).astype(np.float32),
                "mask": np.ones(size, np.float32),
            }
        )
    return out


def numpy_adam(w, b, batches, lr, offset=0.5, b1=0.9, b2=0.999, eps=1e-8):
    """Independent reference: closed-form MSE gradients, Adam by hand (float64)."""
    w, b = w.astype(np.float64), float(b)
    m = [np.zeros_like(w), 0.0]
    v = [np.zeros_like(w), 0.0]
    losses = []
    for t, batch in enumerate(batches, start=1):
        x, y, mask = (batch[k].astype(np.float64) for k in ("x", "y", "mask"))
        r = x @ w + b + offset - y
        n = max(mask.sum(), 1.0)
        losses.append(float((mask * r**2).sum() / n))
        grads = [2.0 / n * x.T @ (mask * r), 2.0 / n * float((mask * r).sum())]
        params = [w, b]
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        w, b = params
    return w, b, losses


def toy_setup(parallel: Parallel, lr: float = 0.05, guard=None):
    tx = make_optimizer(TrainConfig(learning_rate=lr))
    graphdef, state = create(lambda: Linear(3, seed=1), tx, seed=0)
    initial = jax.device_get(state)
    step = make_train_step(graphdef, mse, tx, parallel, trace_guard=guard)
    return step, parallel.put_replicated(state), initial


# ----------------------------------------------------------------------------- tests
def test_adam_steps_match_numpy_and_compile_once():
    parallel = Parallel(jax.devices()[:1])
    step, state, initial = toy_setup(parallel, guard=chex.assert_max_traces(n=1))
    batches = toy_batches(3, 8)
    batches[2]["mask"][5:] = 0.0  # a partly padded batch: same shapes, no new trace
    losses = []
    for batch in batches:
        state, metrics = step(state, parallel.put_batch(batch))
        losses.append(float(metrics["loss"]))
    w0, b0 = np.asarray(initial.params["w"][...]), np.asarray(initial.params["b"][...])
    w, b, ref_losses = numpy_adam(w0, b0, batches, lr=0.05)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.params["w"][...]), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(state.params["b"][...]), b, rtol=1e-5, atol=1e-6)
    assert int(state.step) == 3
    assert float(state.rest["offset"][...]) == 0.5  # non-Param variables are not trained
    assert float(metrics["rows"]) == 5.0


def test_padding_to_device_multiple_changes_nothing():
    """13 real rows on 8 devices are padded to 16 with mask-0 rows: same loss and update as 1 device."""
    batches = toy_batches(2, 13)
    results = []
    for devices in (jax.devices()[:1], jax.devices()[:8]):
        parallel = Parallel(devices)
        step, state, _ = toy_setup(parallel)
        assert parallel.padded_size(13) == (13 if len(devices) == 1 else 16)
        for batch in batches:
            state, metrics = step(state, parallel.put_batch(batch))
        results.append((float(metrics["loss"]), float(metrics["rows"]), jax.device_get(state.params)))
    assert results[0][1] == results[1][1] == 13.0
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    chex.assert_trees_all_close(results[0][2], results[1][2], rtol=1e-5)


def test_pad_batch_marks_padding_rows():
    batch = {"seq_x": np.ones((3, 2), np.int32), "row": np.arange(3, dtype=np.int32), "mask": np.ones(3, np.float32)}
    out = pad_batch(batch, 5)
    assert out["seq_x"].shape == (5, 2) and (out["seq_x"][3:] == 0).all()
    assert out["row"].tolist() == [0, 1, 2, -1, -1]
    assert out["mask"].tolist() == [1, 1, 1, 0, 0]
    with pytest.raises(ValueError):
        pad_batch(batch, 2)


def test_batch_is_sharded_and_state_replicated():
    parallel = Parallel(jax.devices()[:8])
    step, state, _ = toy_setup(parallel)
    batch = parallel.put_batch(toy_batches(1, 16)[0])
    assert batch["x"].sharding.spec == jax.sharding.PartitionSpec("data")
    assert len(batch["x"].addressable_shards) == 8 and batch["x"].addressable_shards[0].data.shape == (2, 3)
    state, _ = step(state, batch)
    for leaf in jax.tree.leaves(state):
        assert leaf.sharding.is_fully_replicated


def test_optimizer_options():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.full(3, 10.0)}
    clipped = make_optimizer(TrainConfig(learning_rate=1.0, grad_clip_norm=1.0))
    updates, _ = clipped.update(grads, clipped.init(params), params)
    # Adam's first step is -lr * sign(g) whatever the scale: clipping must not change it
    np.testing.assert_allclose(np.asarray(updates["w"]), -1.0, rtol=1e-5)
    decayed = make_optimizer(TrainConfig(learning_rate=0.1, weight_decay=0.5))
    updates, _ = decayed.update({"w": jnp.zeros(3)}, decayed.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.1 * 0.5, rtol=1e-6)  # decoupled decay
    with pytest.raises(ValueError):
        make_optimizer(TrainConfig(learning_rate=0.0))


# ----------------------------------------------------------------------------- IM-VAE on 1 vs 8 devices
@pytest.fixture(scope="module")
def tiny_imvae_data():
    from imvae_jax.data.synthetic import build_synthetic

    return build_synthetic(synthetic_users=120, synthetic_items_x=80, synthetic_items_y=70, num_eval_negatives=9)


@pytest.mark.slow
def test_imvae_step_on_8_devices_equals_1(tiny_imvae_data):
    from imvae_jax.config import Config
    from imvae_jax.data.batches import Batcher
    from imvae_jax.losses.objective import make_objective
    from imvae_jax.model.imvae import build_model

    cfg = Config()
    model_cfg = dataclasses.replace(cfg.model, dim=16, num_blocks=1, max_len=6, pseudo_len=3)
    train = tiny_imvae_data["train"]
    n_x, n_y = train.n_items
    batcher = Batcher(train, 16, max_len=6, pseudo_len=3, shuffle=True, seed=0)
    batches = [b for _, b in zip(range(2), batcher.epoch(0))]
    # plain SGD: Adam divides by sqrt(v), which turns the all-reduce's rounding noise on gradients
    # that are ~0 in exact arithmetic into full +-lr updates (the optimiser is tested above)
    tx = optax.sgd(0.5)
    objective = make_objective(cfg.loss)
    outcomes = []
    for devices in (jax.devices()[:1], jax.devices()[:8]):
        parallel = Parallel(devices)
        graphdef, state = create(lambda: build_model(model_cfg, n_items_x=n_x, n_items_y=n_y, seed=3), tx, seed=7)
        initial = jax.device_get(state.params)
        state = parallel.put_replicated(state)
        step = make_train_step(graphdef, objective, tx, parallel)
        losses = []
        for batch in batches:
            state, metrics = step(state, parallel.put_batch(batch))
            losses.append(jax.device_get(metrics))
        outcomes.append((losses, jax.device_get(state.params)))
    (losses_1, params_1), (losses_8, params_8) = outcomes
    for m1, m8 in zip(losses_1, losses_8):
        assert np.isfinite(m1["loss"])
        chex.assert_trees_all_close(m1, m8, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(params_1, params_8, rtol=1e-5, atol=1e-6)
    # the steps did move the parameters, so the comparison is not vacuous
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), params_1, initial)
    assert max(jax.tree.leaves(moved)) > 1e-4


def test_train_state_is_one_pytree():
    tx = make_optimizer(TrainConfig())
    _, state = create(lambda: Linear(3, seed=0), tx, seed=0)
    assert isinstance(state, TrainState)
    leaves = jax.tree.leaves(state)
    assert state.key.dtype == jnp.uint32 and state.key.shape == (2,)
    assert all(isinstance(x, jax.Array) for x in leaves)
    # the optimiser state mirrors the parameters
    assert jax.tree.structure(optax.tree_utils.tree_get(state.opt_state, "mu")) == jax.tree.structure(state.params)


# ----------------------------------------------------------------------------- micro-batches
class EvalMode(nnx.Module):
    """The wrapped model's deterministic (``key=None``) forward, still differentiable: the
    whole-batch and micro-batched steps then compute one function."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, batch, key=None):
        return self.inner(batch, None)


def _imvae_steps(data, variant, recipe, micro_batches, devices, batches, wrap=EvalMode, n_steps=2):
    from imvae_jax.config import Config
    from imvae_jax.losses.objective import make_objective
    from imvae_jax.model.imvae import build_model

    cfg = Config()
    model_cfg = dataclasses.replace(cfg.model, variant=variant, dim=16, num_blocks=1, max_len=6, pseudo_len=3)
    loss_cfg = dataclasses.replace(cfg.loss, recipe=recipe)
    n_x, n_y = data["train"].n_items
    ids_x, ids_y = [None, *range(n_x)], [None, *range(n_x, n_x + n_y)]
    tx = optax.sgd(0.5)
    parallel = Parallel(devices, micro_batches=micro_batches)
    factory = lambda: wrap(  # noqa: E731
        build_model(model_cfg, n_items_x=n_x, n_items_y=n_y, seed=3, source_ids_x=ids_x, source_ids_y=ids_y)
    )
    graphdef, state = create(factory, tx, seed=7)
    state = parallel.put_replicated(state)
    step = make_train_step(graphdef, make_objective(loss_cfg), tx, parallel)
    metrics = []
    for batch in batches[:n_steps]:
        state, m = step(state, parallel.put_batch(batch))
        metrics.append(jax.device_get(m))
    return metrics, jax.device_get(state.params)


@pytest.mark.slow
@pytest.mark.parametrize("variant,recipe", [("paper", "imvae"), ("authors", "authors")])
def test_micro_batched_step_equals_whole_batch(tiny_imvae_data, variant, recipe):
    """4 micro-batches give the whole batch's loss, every term and the same update: the
    objective's batch-level factors (mean over real rows, the authors' batch fractions) come
    from the whole batch. 13 real rows padded to 16, so slices hold different numbers of real rows."""
    from imvae_jax.data.batches import Batcher

    batches = [b for _, b in zip(range(2), Batcher(tiny_imvae_data["train"], 16, max_len=6, pseudo_len=3,
                                                    shuffle=True, seed=0).epoch(0))]
    batches = [pad_batch({k: np.asarray(v)[:13] for k, v in b.items()}, 16) for b in batches]
    whole, params_whole = _imvae_steps(tiny_imvae_data, variant, recipe, 1, jax.devices()[:1], batches)
    sliced, params_sliced = _imvae_steps(tiny_imvae_data, variant, recipe, 4, jax.devices()[:1], batches)
    for a, b in zip(whole, sliced):
        assert set(a) == set(b) and len(a) > 5
        chex.assert_trees_all_close(a, b, rtol=2e-5, atol=1e-6)
    chex.assert_trees_all_close(params_whole, params_sliced, rtol=2e-5, atol=1e-6)


@pytest.mark.slow
def test_micro_batched_step_on_8_devices_equals_1(tiny_imvae_data):
    """With sampling and dropout on: slice k holds rows k, k+c, ... whatever the device count
    and draws fold_in(key, k), so 1 and 8 devices compute the same numbers."""
    from imvae_jax.data.batches import Batcher

    batches = [b for _, b in zip(range(2), Batcher(tiny_imvae_data["train"], 32, max_len=6, pseudo_len=3,
                                                    shuffle=True, seed=1).epoch(0))]
    identity = lambda model: model  # noqa: E731
    one, params_one = _imvae_steps(tiny_imvae_data, "paper", "imvae", 2, jax.devices()[:1], batches, wrap=identity)
    eight, params_eight = _imvae_steps(tiny_imvae_data, "paper", "imvae", 2, jax.devices()[:8], batches, wrap=identity)
    for a, b in zip(one, eight):
        chex.assert_trees_all_close(a, b, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(params_one, params_eight, rtol=1e-5, atol=1e-6)


def test_micro_batch_count_and_errors():
    from imvae_jax.train.step import AUTO_MICRO_BATCH_CPU, micro_batch_count, split_micro_batches

    assert micro_batch_count(512, "auto", "cpu") == 512 // AUTO_MICRO_BATCH_CPU
    assert micro_batch_count(512, "auto", "gpu") == 1
    assert micro_batch_count(100, 64, "gpu") == 2 and micro_batch_count(32, 64, "cpu") == 1
    with pytest.raises(ValueError, match="micro_batch"):
        micro_batch_count(512, 0, "cpu")
    assert Parallel(jax.devices()[:8], micro_batches=2).padded_size(20) == 32
    parts = split_micro_batches({"a": jnp.arange(6)}, 3)
    assert np.asarray(parts["a"]).tolist() == [[0, 3], [1, 4], [2, 5]]
    tx = make_optimizer(TrainConfig())
    graphdef, _ = create(lambda: Linear(3, seed=0), tx, seed=0)
    with pytest.raises(ValueError, match="batch_factors"):
        make_train_step(graphdef, mse, tx, Parallel(jax.devices()[:1], micro_batches=2))
