"""Every Orbax call of the project: latest + best checkpoints, metadata beside them, guarded restore.

V0 ``orbax.checkpoint.CheckpointManager`` (the stable API), one checkpoint per finished epoch
(the checkpoint's step number is the epoch). The V0 traps are handled as
``reference/jax_stack_notes.md`` C.3 says:

* ``best_fn`` is set (otherwise the manager never writes the metrics and ``best_step()`` is the
  latest), with an explicit ``preservation_policy`` = LatestN(1) + BestN(1) (the deprecated
  ``max_to_keep`` is not used), and metrics are passed on every save, so after N epochs the folder
  holds exactly {latest, best} (one folder when they coincide);
* restores go against an abstract target (``ShapeDtypeStruct`` with shardings);
* half-written checkpoints (a killed process) are never listed: Orbax finalises by commit.

Beside each state goes a JSON item ``meta``: the resolved config, the dataset fingerprints and
the run's history (per-epoch records); :func:`check_compatible` refuses a checkpoint from another
config or dataset with a message naming what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

SELECT_KEY = "valid/ndcg@10"
# config keys that may change between a run and its resumption (everything else must match)
RESUMABLE_CHANGES = ("train.epochs", "train.run_dir", "data.dataset", "train.patience")


class CheckpointMismatch(RuntimeError):
    """A checkpoint written by a different config or for a different dataset."""


class Checkpoints:
    """The run's checkpoint folder. ``save(epoch, state, meta, metrics)``; ``restore(epoch, target)``."""

    def __init__(self, directory: str | Path, *, select_key: str = SELECT_KEY, async_save: bool = True):
        self.directory = Path(directory).absolute()
        self.select_key = select_key

        def metric(metrics: Mapping[str, float]) -> float:
            return float(metrics[select_key])

        policy = checkpoint_managers.AnyPreservationPolicy(
            [checkpoint_managers.LatestN(n=1), checkpoint_managers.BestN(get_metric_fn=metric, n=1)]
        )
        options = ocp.CheckpointManagerOptions(
            best_fn=metric,
            best_mode="max",
            preservation_policy=policy,
            enable_async_checkpointing=async_save,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    # ------------------------------------------------------------------------------- queries
    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def best_epoch(self) -> int | None:
        return self.manager.best_step()

    def epochs(self) -> list[int]:
        return sorted(self.manager.all_steps())

    # ------------------------------------------------------------------------------- writes
    def save(self, epoch: int, state: Any, meta: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Save after ``epoch`` (asynchronously; :meth:`wait` or the next save finishes it)."""
        if self.select_key not in metrics:
            raise KeyError(f"checkpoint metrics need {self.select_key!r}; got {sorted(metrics)}")
        self.manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(dict(meta))),
            metrics={k: float(v) for k, v in metrics.items()},
            force=True,
        )

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

    # ------------------------------------------------------------------------------- reads
    def read_meta(self, epoch: int) -> dict[str, Any]:
        restored = self.manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"])

    def restore(self, epoch: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """``(state, meta)`` of ``epoch``; ``abstract_state``: ShapeDtypeStruct leaves with shardings."""
        restored = self.manager.restore(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()),
        )
        return restored["state"], dict(restored["meta"])


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def check_compatible(
    meta: Mapping[str, Any], config: Mapping[str, Any], fingerprints: Mapping[str, str], where: str
) -> None:
    """Raise :class:`CheckpointMismatch` unless ``meta`` was written with the same config (up to
    :data:`RESUMABLE_CHANGES`) and the same dataset fingerprints."""
    saved_prints = dict(meta.get("fingerprints", {}))
    if saved_prints != dict(fingerprints):
        changed = sorted(k for k in set(saved_prints) | set(fingerprints) if saved_prints.get(k) != fingerprints.get(k))
        raise CheckpointMismatch(
            f"{where}: the checkpoint was trained on another dataset (split fingerprints differ: {changed}; "
            f"checkpoint {[saved_prints.get(k) for k in changed]}, now {[fingerprints.get(k) for k in changed]}). "
            "Use a new --run-dir, or the dataset it was trained on."
        )
    saved, now = _flat(meta.get("config", {})), _flat(config)
    differ = sorted(k for k in set(saved) | set(now) if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    if differ:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in differ[:8])
        raise CheckpointMismatch(
            f"{where}: the checkpoint was written by a different config ({details}). "
            f"Only {list(RESUMABLE_CHANGES)} may change on --resume; use a new --run-dir otherwise."
        )
