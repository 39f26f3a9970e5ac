"""Orbax checkpoints: exactly {latest, best} on disk, exact restore, refusal of other configs/data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imvae_jax.train.checkpoint import CheckpointMismatch, Checkpoints, check_compatible
from imvae_jax.train.config import TrainConfig
from imvae_jax.train.state import create, make_optimizer
from imvae_jax.train.step import Parallel


def toy_state(seed: int = 0):
    from flax import nnx

    class Toy(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(jax.random.normal(jax.random.key(seed), (4, 3)))
            self.ids = nnx.Variable(jnp.arange(5, dtype=jnp.int32))

    tx = make_optimizer(TrainConfig())
    _, state = create(Toy, tx, seed=seed)
    return state


def step_dirs(folder):
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def test_folder_holds_exactly_latest_and_best(tmp_path):
    parallel = Parallel(jax.devices()[:1])
    checkpoints = Checkpoints(tmp_path / "ck")
    scores = [0.10, 0.50, 0.30, 0.20, 0.45]  # best = epoch 2, latest = epoch 5
    states = {}
    for epoch, score in enumerate(scores, start=1):
        state = parallel.put_replicated(toy_state(seed=epoch))
        states[epoch] = jax.device_get(state)
        checkpoints.save(epoch, state, {"epoch": epoch, "config": {"a": 1}}, {"valid/ndcg@10": score})
        checkpoints.wait()
        kept = step_dirs(tmp_path / "ck")
        best_so_far = 1 + int(np.argmax(scores[:epoch]))
        assert kept == sorted({best_so_far, epoch}), (epoch, kept)
    assert checkpoints.best_epoch() == 2 and checkpoints.latest_epoch() == 5
    # metrics are written to disk (the V0 trap: only with best_fn set)
    assert (tmp_path / "ck" / "2" / "metrics").exists()
    target = parallel.abstract(parallel.put_replicated(toy_state(seed=99)))
    restored, meta = checkpoints.restore(2, target)
    assert meta["epoch"] == 2 and meta["config"] == {"a": 1}
    for a, b in zip(jax.tree.leaves(jax.device_get(restored)), jax.tree.leaves(states[2])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert restored.params["w"][...].sharding.is_fully_replicated
    checkpoints.close()
    # a fresh manager on the same folder sees the same best and latest (resume)
    again = Checkpoints(tmp_path / "ck")
    assert (again.best_epoch(), again.latest_epoch()) == (2, 5)
    again.close()


def test_save_needs_the_selection_metric(tmp_path):
    checkpoints = Checkpoints(tmp_path / "ck", async_save=False)
    with pytest.raises(KeyError, match="valid/ndcg@10"):
        checkpoints.save(1, toy_state(), {}, {"loss": 1.0})
    checkpoints.close()


def test_check_compatible_refuses_other_config_or_data():
    config = {"train": {"epochs": 10, "learning_rate": 0.001, "run_dir": "a"}, "model": {"dim": 64}}
    prints = {"train": "aaa", "valid": "bbb", "test": "ccc"}
    meta = {"config": config, "fingerprints": prints}
    # allowed changes: more epochs, another run folder
    check_compatible(meta, {**config, "train": {**config["train"], "epochs": 20, "run_dir": "b"}}, prints, "here")
    with pytest.raises(CheckpointMismatch, match=r"model\.dim: checkpoint 64, now 32"):
        check_compatible(meta, {**config, "model": {"dim": 32}}, prints, "here")
    with pytest.raises(CheckpointMismatch, match=r"another dataset.*\['valid'\]"):
        check_compatible(meta, config, {**prints, "valid": "zzz"}, "here")
