"""The compiled steps and their data parallelism: one code path from 1 to N devices (any hosts).

* :class:`Parallel`: an Auto-axis ``Mesh(devices, ('data',))``; batches go on ``P('data')``
  (leading axis split over devices), the state on ``P()`` (replicated); ``jit`` inserts the
  gradient all-reduce. A batch whose size is not a multiple of the device count is padded with
  ``mask = 0`` rows (never dropped; the objective averages over real rows only). On several
  hosts every process builds the same global batch (the batcher is deterministic in (seed,
  epoch)) and hands only the rows of its own devices to
  ``jax.make_array_from_process_local_data``.
* :func:`make_train_step`: ``jax.jit`` (not ``nnx.jit``) of a pure ``(state, batch) -> (state,
  metrics)`` over split NNX state, state donated. Randomness: ``fold_in(state.key, step)``, drawn
  on global shapes, so 1 and 8 devices draw the same numbers.
* Micro-batches (``Parallel(micro_batches=c)``, config ``train.micro_batch``): the step sums the
  gradients of ``c`` slices of the batch in a ``lax.scan``, each slice's loss weighted by factors
  of the *whole* batch (:meth:`~imvae_jax.losses.objective.Objective.batch_factors`), so the
  update is the whole batch's up to float rounding. Slice ``k`` holds rows ``k, k + c, k + 2c,
  ...`` (spread over every device, no communication) and draws its dropout from
  ``fold_in(key, k)``: the same numbers on 1 or 8 devices, other numbers than with ``c = 1``.
  On CPU a slice's activations stay in cache: 64-row slices train a batch of 512 ~25% faster
  (``benchmarks/bench_train.py``), hence ``train.micro_batch: auto`` = 64 rows on CPU, the
  whole batch on accelerators.
* :func:`make_eval_step`: eval mode (``key=None``), the target and its stored negatives scored in
  one pass, ranks computed in the same program; optionally full-catalogue ranks (history
  masked). Outputs are replicated so every host can read them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from imvae_jax.train.state import TrainState

Batch = Mapping[str, Any]
Objective = Callable[[Any, Batch], tuple[jax.Array, dict[str, jax.Array]]]


def pad_batch(batch: Batch, size: int) -> dict[str, np.ndarray]:
    """Pad every ``[B, ...]`` array to ``[size, ...]`` with padding rows (ids/flags 0, ``row`` -1,
    ``mask`` 0), the batcher's own convention."""
    current = len(batch["mask"])
    if current == size:
        return dict(batch)
    if current > size:
        raise ValueError(f"batch of {current} rows does not fit {size}")
    out = {}
    for name, value in batch.items():
        value = np.asarray(value)
        fill = -1 if name == "row" else 0
        extra = np.full((size - current, *value.shape[1:]), fill, value.dtype)
        out[name] = np.concatenate([value, extra], axis=0)
    return out


AUTO_MICRO_BATCH_CPU = 64  # rows per micro-batch that ``train.micro_batch: auto`` picks on CPU


def micro_batch_count(batch_size: int, micro_batch: int | str, platform: str) -> int:
    """How many micro-batches a training batch of ``batch_size`` rows is cut into.

    ``micro_batch``: rows per micro-batch (>= 1; at least ``batch_size``: one), or ``"auto"``:
    :data:`AUTO_MICRO_BATCH_CPU` rows on the ``"cpu"`` platform, the whole batch elsewhere.
    """
    if micro_batch == "auto":
        micro_batch = AUTO_MICRO_BATCH_CPU if platform == "cpu" else batch_size
    if isinstance(micro_batch, bool) or not isinstance(micro_batch, int) or micro_batch < 1:
        raise ValueError(f"train.micro_batch: expected 'auto' or a number of rows >= 1, got {micro_batch!r}")
    return max(1, -(-batch_size // micro_batch))


class Parallel:
    """The device mesh, the placement of batches and state, and the number of micro-batches a
    training batch is cut into (see the module docstring)."""

    def __init__(self, devices: list[jax.Device] | None = None, micro_batches: int = 1):
        devices = list(jax.devices() if devices is None else devices)
        if micro_batches < 1:
            raise ValueError(f"micro_batches must be >= 1, got {micro_batches}")
        self.mesh = Mesh(np.asarray(devices), ("data",))  # AxisType.Auto
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.chunked_sharding = NamedSharding(self.mesh, P(None, "data"))  # [micro-batch, rows, ...]
        self.replicated = NamedSharding(self.mesh, P())
        self.n_devices = len(devices)
        self.n_processes = len({d.process_index for d in devices})
        self.micro_batches = micro_batches

    def padded_size(self, batch_size: int) -> int:
        """The global batch size rounded up to a multiple of (devices x micro-batches)."""
        multiple = self.n_devices * self.micro_batches
        return -(-batch_size // multiple) * multiple

    def local_rows(self, global_rows: int) -> slice:
        """The rows of a ``[global_rows, ...]`` batch held by this process's devices."""
        index = self.batch_sharding.addressable_devices_indices_map((global_rows,))
        starts = sorted(s[0].start or 0 for s in index.values())
        stops = sorted(global_rows if s[0].stop is None else s[0].stop for s in index.values())
        start, stop = starts[0], stops[-1]
        if stop - start != sum(b - a for a, b in zip(starts, stops)):
            raise RuntimeError("this process's devices do not hold a contiguous block of the batch")
        return slice(start, stop)

    def put_batch(self, batch: Batch) -> dict[str, jax.Array]:
        """A global batch (the same on every process) -> arrays sharded on ``P('data')``."""
        batch = pad_batch(batch, self.padded_size(len(batch["mask"])))
        rows = len(batch["mask"])
        if self.n_processes == 1:
            return jax.device_put(dict(batch), self.batch_sharding)
        local = self.local_rows(rows)
        return {
            name: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(v)[local], v.shape)
            for name, v in batch.items()
        }

    def put_replicated(self, tree: Any) -> Any:
        """Host (or single-device) arrays -> replicated global arrays, identical on every process."""
        if self.n_processes == 1:
            return jax.device_put(tree, self.replicated)

        def put(x: Any) -> jax.Array:
            x = np.asarray(x)
            return jax.make_array_from_process_local_data(self.replicated, x, x.shape)

        return jax.tree.map(put, tree)

    def abstract(self, tree: Any) -> Any:
        """``ShapeDtypeStruct`` leaves with the replicated sharding (restore targets)."""
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=self.replicated), tree)


def make_train_step(
    graphdef: nnx.GraphDef,
    objective: Objective,
    tx: optax.GradientTransformation,
    parallel: Parallel,
    trace_guard: Callable[[Callable], Callable] | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """The jitted, state-donating ``(state, batch) -> (state, metrics)``.

    metrics (replicated scalars): ``loss``, every objective term by name, ``grad_norm``,
    ``rows`` (real rows in the batch). A non-finite loss is not masked here; the loop stops.
    ``trace_guard`` wraps the Python step before jit (tests: ``chex.assert_max_traces(n=1)``).
    With ``parallel.micro_batches > 1`` the gradient is accumulated over that many slices (module
    docstring); ``objective`` must then offer ``batch_factors`` (every :class:`Objective` does).
    Memoised on its (hashable) arguments, so equal models/objectives/optimisers on the same
    mesh reuse one compiled program within a process.
    """
    chunks = parallel.micro_batches
    if chunks > 1 and not hasattr(objective, "batch_factors"):
        raise ValueError(
            f"micro-batches ({chunks}) need an objective with batch_factors() (an Objective from "
            "make_objective) to weight each slice exactly; set train.micro_batch to the batch size"
        )
    return _train_step(graphdef, objective, tx, parallel.replicated, parallel.chunked_sharding, chunks, trace_guard)


def split_micro_batches(batch: Batch, chunks: int) -> dict[str, jax.Array]:
    """``[B, ...]`` arrays -> ``[chunks, B / chunks, ...]``; slice ``k`` holds rows ``k, k + chunks, ...``."""
    out = {}
    for name, value in batch.items():
        rows = value.shape[0]
        if rows % chunks:
            raise ValueError(f"batch[{name!r}] has {rows} rows, not a multiple of {chunks} micro-batches")
        out[name] = jnp.swapaxes(value.reshape(rows // chunks, chunks, *value.shape[1:]), 0, 1)
    return out


@functools.lru_cache(maxsize=8)
def _train_step(graphdef, objective, tx, replicated, chunked, chunks, trace_guard):
    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)

        def loss_fn(params: Any, part: Batch, part_key: jax.Array, factors: Any = None):
            model = nnx.merge(graphdef, params, state.rest)
            outputs = model(part, part_key)
            return objective(outputs, part) if factors is None else objective(outputs, part, factors)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        if chunks == 1:
            (loss, aux), grads = grad_fn(state.params, batch, key)
        else:
            factors = objective.batch_factors(batch)
            parts = jax.lax.with_sharding_constraint(split_micro_batches(batch, chunks), chunked)

            def accumulate(carry, inputs):
                index, part = inputs
                (part_loss, part_aux), part_grads = grad_fn(state.params, part, jax.random.fold_in(key, index), factors)
                return jax.tree.map(jnp.add, carry, (part_loss, part_aux, part_grads)), None

            first = jax.tree.map(lambda x: x[0], parts)
            shapes = jax.eval_shape(grad_fn, state.params, first, key, factors)
            (loss, aux), grads = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
            (loss, aux, grads), _ = jax.lax.scan(accumulate, (loss, aux, grads), (jnp.arange(chunks), parts))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **aux, "grad_norm": optax.tree.norm(grads), "rows": jnp.sum(batch["mask"])}
        new_state = TrainState(step=state.step + 1, params=params, rest=state.rest, opt_state=opt_state, key=state.key)
        return new_state, metrics

    if trace_guard is not None:
        train_step = trace_guard(train_step)
    return jax.jit(train_step, donate_argnames=("state",), out_shardings=replicated)


def make_eval_step(
    graphdef: nnx.GraphDef,
    parallel: Parallel,
    *,
    n_items: tuple[int, int],
    tie_mode: str = "pessimistic",
    full_ranking: bool = False,
    chunk_size: int = 4096,
) -> Callable[[Any, Any, Batch], dict[str, jax.Array]]:
    """The jitted ``(params, rest, batch) -> per-row outputs`` (replicated ``[B]`` int32):

    ``ranks``: target rank among ``batch['candidates']`` (ties against the target, or the
    authors' group ties when ``tie_mode='authors'``); ``ranks_all`` (authors' tie mode only: their
    all-users ties); ``full_ranks`` (``full_ranking``): rank among every item of the target domain,
    ``batch['history']`` ``[B, H]`` masked.
    """
    return _eval_step(graphdef, parallel.replicated, tuple(n_items), tie_mode, full_ranking, chunk_size)


@functools.lru_cache(maxsize=8)
def _eval_step(graphdef, replicated, n_items, tie_mode, full_ranking, chunk_size):
    from imvae_jax.eval.metrics import full_catalogue_ranks, protocol_ranks

    def eval_step(params: Any, rest: Any, batch: Batch) -> dict[str, jax.Array]:
        model = nnx.merge(graphdef, params, rest)
        out = model(batch, None)
        ranks, ranks_all = protocol_ranks(out.scores, tie_mode)
        result = {"ranks": ranks}
        if ranks_all is not None:
            result["ranks_all"] = ranks_all
        if full_ranking:
            domain = batch["target_domain"]
            target = batch["candidates"][:, 0]
            history = batch["history"]
            full = []
            for d, (h, n) in enumerate(((out.h_x, n_items[0]), (out.h_y, n_items[1]))):
                scores = model.score_items(h, jnp.arange(n + 1, dtype=jnp.int32), "xy"[d])  # [B, n+1]
                safe_target = jnp.where(domain == d, target, 1)
                full.append(full_catalogue_ranks(scores, safe_target, history, chunk_size=chunk_size))
            result["full_ranks"] = jnp.where(domain == 0, full[0], full[1])
        return result

    return jax.jit(eval_step, out_shardings=replicated)
