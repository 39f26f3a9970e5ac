"""The data layer: prepared CDSR datasets (Parquet), readers, the synthetic generator, batches.

Public names (imported lazily so ``imvae --help`` stays fast):

* ``Split``, ``read_split``, ``read_dataset``, ``write_split``, ``write_dataset``, ``DatasetError``
  (:mod:`.schema`);
* ``Batcher`` (:mod:`.batches`);
* ``build_synthetic`` (:mod:`.synthetic`), ``build_authors``, ``build_ratings`` (:mod:`.readers`);
  ``imvae_jax.data.cli.build(cfg)`` builds from any ``DataConfig.source``;
* ``add_negatives`` (:mod:`.candidates`), ``DataConfig`` (:mod:`.config`);
  the audit is ``imvae_jax.data.audit.audit``.
"""

from __future__ import annotations

from imvae_jax._lazy import lazy_exports

_EXPORTS = {
    "Split": "schema",
    "DatasetError": "schema",
    "read_split": "schema",
    "read_dataset": "schema",
    "write_split": "schema",
    "write_dataset": "schema",
    "Batcher": "batches",
    "build_synthetic": "synthetic",
    "build_authors": "readers",
    "build_ratings": "readers",
    "add_negatives": "candidates",
    "DataConfig": "config",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
