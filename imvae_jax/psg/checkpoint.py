"""LightGCN checkpoints: the embedding table + Adam state, on the project's one Orbax module.

All Orbax calls stay in :mod:`imvae_jax.train.checkpoint` (latest + best kept, metrics written,
abstract-target restore); this adapter only flattens the optimizer state to named leaves (so the
stored tree has no optax classes) and refuses to resume a run of another config or graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class EmbeddingCheckpoints:
    """``save(epoch, table, opt_state, meta, metrics)``; ``restore_latest``; ``restore_table(epoch)``."""

    def __init__(self, directory: str | Path, select_key: str):
        from imvae_jax.train.checkpoint import Checkpoints

        self.directory = Path(directory)
        self.checkpoints = Checkpoints(directory, select_key=select_key, async_save=False)

    def latest_epoch(self) -> int | None:
        return self.checkpoints.latest_epoch()

    def best_epoch(self) -> int | None:
        return self.checkpoints.best_epoch()

    @staticmethod
    def _state(table: Any, opt_state: Any) -> dict[str, Any]:
        import jax

        leaves = jax.tree_util.tree_leaves(opt_state)
        return {"table": table, "opt": {f"{i:03d}": leaf for i, leaf in enumerate(leaves)}}

    @staticmethod
    def _abstract(tree: Any) -> Any:
        import jax

        return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)

    def save(self, epoch: int, table: Any, opt_state: Any, meta: dict[str, Any], metrics: dict[str, float]) -> None:
        self.checkpoints.save(epoch, self._state(table, opt_state), meta, metrics)

    def restore_latest(self, table: Any, opt_state: Any, identity: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """``(table, opt_state, meta)`` of the latest epoch; ``table``/``opt_state`` give the structure."""
        import jax

        epoch = self.latest_epoch()
        meta = self.checkpoints.read_meta(epoch)
        for key, value in identity.items():
            if meta.get(key) != value:
                raise ValueError(
                    f"{self.directory}: the checkpoint of epoch {epoch} was written for a different {key} "
                    f"(saved {str(meta.get(key))[:200]}, now {str(value)[:200]}); use a new checkpoint folder"
                )
        state, meta = self.checkpoints.restore(epoch, self._abstract(self._state(table, opt_state)))
        treedef = jax.tree_util.tree_structure(opt_state)
        opt = jax.tree_util.tree_unflatten(treedef, [state["opt"][k] for k in sorted(state["opt"])])
        return state["table"], opt, meta

    def restore_table(self, epoch: int, table: Any, opt_state: Any) -> np.ndarray:
        """The embedding table saved at ``epoch``."""
        state, _ = self.checkpoints.restore(epoch, self._abstract(self._state(table, opt_state)))
        return np.array(state["table"])

    def close(self) -> None:
        self.checkpoints.close()

