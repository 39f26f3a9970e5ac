"""IM-VAE model package (Flax NNX). Names are imported lazily, so the CLI stays fast.

Public API:

* ``build_model(cfg, *, n_items_x, n_items_y, seed, source_ids_x=None, source_ids_y=None,
  joint_size=None) -> nnx.Module`` (:mod:`.imvae`); ``model(batch, key) -> ModelOutputs``,
  ``model.score_items(h, item_ids, domain) -> [B, C]`` logits.
* ``load_authors_weights(path, cfg, *, n_items_x, n_items_y, source_ids_x, source_ids_y,
  joint_size=None) -> nnx.State`` (:mod:`.authors`).
* ``count_params``, ``forward_flops``, ``training_flops_per_row`` (:mod:`.counting`).
* ``ModelConfig`` (:mod:`.config`), ``Gaussian``, ``ModelOutputs`` (:mod:`.outputs`),
  ``Switches``/``switches_for`` (the paper-vs-authors switches, :mod:`.imvae`).
"""

from __future__ import annotations

from imvae_jax._lazy import lazy_exports

_EXPORTS = {
    "build_model": "imvae",
    "IMVAE": "imvae",
    "Switches": "imvae",
    "switches_for": "imvae",
    "SASRec": "sasrec",
    "load_authors_weights": "authors",
    "count_params": "counting",
    "forward_flops": "counting",
    "training_flops_per_row": "counting",
    "ModelConfig": "config",
    "Gaussian": "outputs",
    "ModelOutputs": "outputs",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
