"""The IM-VAE objective: closed-form KLs, per-row terms and named recipes of weighted terms.

Exports are lazy (PEP 562) so that importing :mod:`imvae_jax.losses.config` (as the root
config does) does not import JAX.
"""

from __future__ import annotations

from imvae_jax._lazy import lazy_exports

_EXPORTS = {
    "LossConfig": "imvae_jax.losses.config",
    "kl_diag_gaussian": "imvae_jax.losses.kl",
    "Objective": "imvae_jax.losses.objective",
    "Term": "imvae_jax.losses.objective",
    "authors_terms": "imvae_jax.losses.objective",
    "make_objective": "imvae_jax.losses.objective",
    "paper_terms": "imvae_jax.losses.objective",
    "recipe": "imvae_jax.losses.objective",
    "recipe_names": "imvae_jax.losses.objective",
    "register_recipe": "imvae_jax.losses.objective",
}

__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
