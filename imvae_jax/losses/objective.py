"""An objective is a named recipe of weighted terms (kauldron style).

A :class:`Term` is a small named object: a per-row function ``fn(outputs, batch, cfg) -> [B]``
(:mod:`imvae_jax.losses.terms`), a weight (a number, or a function of :class:`LossConfig`
such as ``lambda_t``), an optional row mask by target domain, an optional batch-level scale
(the authors' code) and the inputs it needs. The objective's value of a term is::

    weight * scale(batch) * sum_i(mask_i * domain_mask_i * fn_i) / sum_i(mask_i)

so padding rows (``batch["mask"] == 0``) contribute nothing and the mean is over real rows;
the loss is the sum of these values. Terms whose weight resolves to 0 are not computed.

Per-row reading of the paper (3.4.5). A row is one prediction task with one target item in
one domain, so it observes only that domain's likelihood. A row targeting X takes X's side of
the objective: the reconstruction of its target, the KLs of the three latents that feed X's
head (``z_x``, ``z_t_y``, ``z_a_x``), X's informative/disentangle term ``KL(z_t_y ‖ r_y)``
and X's denoising term; symmetric for Y. Summed over a user's two rows this is the paper's
two-domain objective; the authors' code groups the KLs by domain the same way (spec 3.2).

Recipes (``register_recipe`` adds more):

===================  =========================================================================
``imvae``            (1+λt)·[rec + KL(z_d)] + KL(z_t) + KL(z_a) + λt·KL(q‖r) + λa·λd·KL(z_d‖z_a_d)
``no_if_ds``         ``elbo`` + denoising (the (1+λt) factor goes with the IF/DS regularisers,
                     whose bounds Eq. 15-16 produce it)
``no_dn``            ``imvae`` without the denoising terms
``elbo``             rec + the six KLs, weight 1 (Eq. 8)
``reconstruction``   rec only (SASRec-style baselines)
``authors``          the authors' code (spec 3.3): clamped BCE mean over B·C, discriminator
                     ×0.1×φ, KLs ×f_D, reversed denoising ×λa×f_D×mean(w_D), IF/DS ×λt×f_D
===================  =========================================================================

``cfg.on_missing`` decides what happens to a term whose model outputs are absent (a model
built with ``use_cross_domain=False`` has no ``z_t_*``/``r_*``, SASRec has no latents):
``"skip"`` drops it (:meth:`Objective.active` lists what remains), ``"error"`` raises.
A missing *batch* key is always an error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from imvae_jax.losses import terms as T
from imvae_jax.losses.config import LossConfig
from imvae_jax.model.outputs import ModelOutputs

Weight = float | Callable[[LossConfig], float]


@dataclasses.dataclass(frozen=True)
class Term:
    """One weighted piece of an objective.

    name:     key in the objective's aux dict and in ``LossConfig.weights``.
    fn:       ``fn(outputs, batch, cfg) -> [B]`` per-row values.
    weight:   a number or ``f(cfg) -> number`` (resolved once by :func:`make_objective`).
    domain:   ``"x"``/``"y"``: only rows whose target is in that domain count; None: every row.
    scale:    ``scale(batch, mask, cfg) -> scalar`` batch-level factor, or None.
    requires: inputs, as ``"posteriors.<name>"``, ``"priors.<name>"``, ``"extras.<name>"``,
              ``"batch.<key>"``.
    """

    name: str
    fn: T.TermFn
    weight: Weight = 1.0
    domain: T.Domain | None = None
    scale: T.ScaleFn | None = None
    requires: tuple[str, ...] = ()

    def with_weight(self, weight: Weight) -> Term:
        return dataclasses.replace(self, weight=weight)

    def resolve_weight(self, cfg: LossConfig) -> float:
        weight = self.weight(cfg) if callable(self.weight) else self.weight
        return _check_weight(weight, f"term {self.name!r}")


# ------------------------------------------------------------------------------ weight functions
def one_plus_lambda_t(cfg: LossConfig) -> float:
    """The (1 + λt) factor of the paper's overall objective (3.4.5)."""
    return 1.0 + cfg.lambda_t


def lambda_t(cfg: LossConfig) -> float:
    return cfg.lambda_t


def lambda_a(cfg: LossConfig) -> float:
    return cfg.lambda_a


def discriminator_weight(cfg: LossConfig) -> float:
    return cfg.discriminator_weight


# ---------------------------------------------------------------------------------- term library
def _kl_term(latent: str, domain: T.Domain, weight: Weight, scale: T.ScaleFn | None = None) -> Term:
    requires = (f"posteriors.{latent}", f"priors.{latent}", "batch.target_domain")
    fn = T.kl_to_prior(latent)
    if scale is None:
        return Term(f"kl_{latent}", fn, weight, domain=domain, requires=requires)
    return Term(f"kl_{latent}", fn, weight, scale=scale, requires=requires)


def _if_ds_term(domain: T.Domain, scale: T.ScaleFn | None = None) -> Term:
    other = T.OTHER[domain]
    requires = (f"posteriors.z_t_{other}", f"posteriors.r_{other}", "batch.target_domain")
    fn = T.informative_disentangle(domain)
    if scale is None:
        return Term(f"if_ds_{domain}", fn, lambda_t, domain=domain, requires=requires)
    return Term(f"if_ds_{domain}", fn, lambda_t, scale=scale, requires=requires)


def paper_terms() -> dict[str, Term]:
    """The terms of the paper's overall objective (3.4.5), with its weights, by name."""
    library = {"reconstruction": Term("reconstruction", T.reconstruction, one_plus_lambda_t)}
    for d in ("x", "y"):
        o = T.OTHER[d]
        library[f"kl_z_{d}"] = _kl_term(f"z_{d}", d, one_plus_lambda_t)
        library[f"kl_z_t_{o}"] = _kl_term(f"z_t_{o}", d, 1.0)
        library[f"kl_z_a_{d}"] = _kl_term(f"z_a_{d}", d, 1.0)
        library[f"if_ds_{d}"] = _if_ds_term(d)
        library[f"denoise_{d}"] = Term(
            f"denoise_{d}",
            T.denoising(d),
            lambda_a,
            domain=d,
            requires=(f"posteriors.z_{d}", f"posteriors.z_a_{d}", "batch.target_domain",
                      f"batch.len_{d}", f"batch.seq_{d}"),
        )
    return library


def authors_terms() -> tuple[Term, ...]:
    """The authors' code's loss (spec 3.3), term by term, with its batch-level weighting."""
    out = [
        Term("reconstruction", T.authors_reconstruction, 1.0),
        Term(
            "discriminator",
            T.authors_discriminator,
            discriminator_weight,
            scale=T.non_tailed_fraction,
            requires=("extras.disc_x", "extras.disc_y", "batch.target_domain", "batch.tailed"),
        ),
    ]
    for d in ("x", "y"):
        o = T.OTHER[d]
        fraction = T.target_fraction(d)
        out += [
            _kl_term(f"z_t_{o}", d, 1.0, scale=fraction),
            _kl_term(f"z_{d}", d, 1.0, scale=fraction),
            _kl_term(f"z_a_{d}", d, 1.0, scale=fraction),
            Term(
                f"denoise_{d}",
                T.authors_denoising(d),
                lambda_a,
                scale=T.mean_adaptive_weight(d),
                requires=(f"posteriors.z_{d}", f"posteriors.z_a_{d}", "batch.target_domain",
                          f"batch.len_{d}", f"batch.seq_{d}"),
            ),
            _if_ds_term(d, scale=fraction),
        ]
    return tuple(out)


# -------------------------------------------------------------------------------------- registry
_RECIPES: dict[str, tuple[Term, ...]] = {}


def register_recipe(name: str, terms: Iterable[Term], *, overwrite: bool = False) -> None:
    """Register a recipe: an ordered collection of terms with distinct names."""
    terms = tuple(terms)
    names = [t.name for t in terms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"recipe {name!r}: duplicate term names {duplicates}")
    for term in terms:
        if not isinstance(term, Term):
            raise TypeError(f"recipe {name!r}: {term!r} is not a Term")
    if name in _RECIPES and not overwrite:
        raise ValueError(f"recipe {name!r} is already registered (pass overwrite=True to replace it)")
    _RECIPES[name] = terms


def recipe(name: str) -> tuple[Term, ...]:
    """The terms of a registered recipe."""
    if name not in _RECIPES:
        raise ValueError(f"LossConfig.recipe: unknown recipe {name!r}; registered: {recipe_names()}")
    return _RECIPES[name]


def recipe_names() -> list[str]:
    return sorted(_RECIPES)


def _register_builtin() -> None:
    lib = paper_terms()
    imvae = tuple(lib.values())
    elbo = tuple(
        lib[n].with_weight(1.0)
        for n in ("reconstruction", "kl_z_x", "kl_z_y", "kl_z_t_y", "kl_z_t_x", "kl_z_a_x", "kl_z_a_y")
    )
    register_recipe("imvae", imvae)
    register_recipe("no_if_ds", elbo + (lib["denoise_x"], lib["denoise_y"]))
    register_recipe("no_dn", tuple(t for t in imvae if not t.name.startswith("denoise_")))
    register_recipe("elbo", elbo)
    register_recipe("reconstruction", (lib["reconstruction"].with_weight(1.0),))
    register_recipe("authors", authors_terms())


_register_builtin()


# ------------------------------------------------------------------------------------- objective
@dataclasses.dataclass(frozen=True)
class Objective:
    """``objective(outputs, batch) -> (loss [], aux {term name: weighted mean value []})``.

    Pure and jit-able (``jax.jit(objective)``); ``terms`` carry resolved float weights.
    """

    name: str
    terms: tuple[Term, ...]
    cfg: LossConfig

    def active(self, outputs: ModelOutputs) -> tuple[Term, ...]:
        """The terms whose model outputs are present (raises instead if ``on_missing='error'``)."""
        kept = []
        for term in self.terms:
            missing = [r for r in term.requires if not r.startswith("batch.") and not _has(outputs, r)]
            if not missing:
                kept.append(term)
            elif self.cfg.on_missing == "error":
                raise ValueError(
                    f"objective {self.name!r}: term {term.name!r} needs model output(s) {missing}, "
                    "which the model did not produce (set loss.on_missing='skip' to drop such terms)"
                )
        return tuple(kept)

    def batch_factors(self, batch: Mapping[str, Any]) -> dict[str, jax.Array]:
        """Per term, ``weight * scale(batch) / sum_i(mask_i)``: everything in a term's value that
        depends on the batch as a whole (not on the parameters). ``{name: []}``."""
        mask = self._mask(batch)
        denominator = jnp.maximum(jnp.sum(mask), 1.0)
        factors = {}
        for term in self.terms:
            if any(r.partition(".")[2] not in batch for r in term.requires if r.startswith("batch.")):
                continue  # cannot be active on this batch (``__call__`` names the missing key)
            factor = term.weight / denominator
            if term.scale is not None:
                factor = factor * term.scale(batch, mask, self.cfg)
            factors[term.name] = factor
        return factors

    def __call__(
        self,
        outputs: ModelOutputs,
        batch: Mapping[str, Any],
        factors: Mapping[str, jax.Array] | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """``factors`` (from :meth:`batch_factors` of the whole batch) makes the value on a slice
        of a batch that slice's exact share: the shares of a batch's slices sum to its value
        (gradient accumulation over micro-batches). None: factors of ``batch`` itself."""
        active = self.active(outputs)
        _check_batch(self.name, active, batch)
        mask = self._mask(batch)
        if factors is None:
            factors = self.batch_factors(batch)
        aux: dict[str, jax.Array] = {}
        for term in active:
            values = term.fn(outputs, batch, self.cfg)
            if jnp.shape(values) != mask.shape:
                raise ValueError(
                    f"objective {self.name!r}: term {term.name!r} returned shape {jnp.shape(values)}, "
                    f"expected per-row values {mask.shape}"
                )
            rows = mask
            if term.domain is not None:
                rows = rows * T.is_target(batch, term.domain)
            # where(): a padding row's value (possibly NaN from an all-padding input) never leaks.
            aux[term.name] = factors[term.name] * jnp.sum(jnp.where(rows > 0, rows * values, 0.0))
        loss = sum(aux.values(), jnp.zeros((), jnp.float32))
        return loss, aux

    def _mask(self, batch: Mapping[str, Any]) -> jax.Array:
        _check_batch(self.name, (), batch)
        mask = jnp.asarray(batch["mask"], jnp.float32)
        if mask.ndim != 1:
            raise ValueError(f"objective {self.name!r}: batch['mask'] must be [B], got shape {mask.shape}")
        return mask


def make_objective(cfg: LossConfig) -> Objective:
    """Build ``cfg.recipe`` with its weights resolved from ``cfg`` and ``cfg.weights`` overrides.

    ``cfg.weights = {"denoise_x": 0.01}`` replaces that term's weight; a weight of 0 drops the
    term. Unknown term names, non-numeric weights and inconsistent settings are errors.
    """
    terms = recipe(cfg.recipe)
    names = [t.name for t in terms]
    weights = dict(cfg.weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(
            f"LossConfig.weights: term(s) {unknown} are not in recipe {cfg.recipe!r}; its terms: {names}"
        )
    if cfg.on_missing not in ("skip", "error"):
        raise ValueError(f"LossConfig.on_missing: {cfg.on_missing!r} is not 'skip' or 'error'")
    if cfg.recipe == "authors" and cfg.reconstruction != "bce":
        raise ValueError(
            "LossConfig.reconstruction: recipe 'authors' fixes its reconstruction (clamped BCE); "
            f"got {cfg.reconstruction!r}"
        )
    resolved = []
    for term in terms:
        if term.name in weights:
            weight = _check_weight(weights[term.name], f"LossConfig.weights[{term.name!r}]")
        else:
            weight = term.resolve_weight(cfg)
        if weight != 0.0:
            resolved.append(term.with_weight(weight))
    return Objective(cfg.recipe, tuple(resolved), cfg)


# --------------------------------------------------------------------------------------- helpers
def _check_weight(weight: Any, where: str) -> float:
    if isinstance(weight, str):  # YAML 1.1 reads "2e-3" (no dot) as a string
        try:
            weight = float(weight)
        except ValueError:
            pass
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ValueError(f"{where}: weight must be a finite number, got {weight!r}")
    return float(weight)


def _has(outputs: ModelOutputs, requirement: str) -> bool:
    field, _, key = requirement.partition(".")
    container = getattr(outputs, field, None)
    return isinstance(container, Mapping) and key in container


def _check_batch(name: str, terms: Iterable[Term], batch: Mapping[str, Any]) -> None:
    needed = {"mask"}
    for term in terms:
        needed |= {r.partition(".")[2] for r in term.requires if r.startswith("batch.")}
        if term.domain is not None:
            needed.add("target_domain")
    missing = sorted(k for k in needed if k not in batch)
    if missing:
        raise ValueError(f"objective {name!r}: the batch lacks key(s) {missing} (has {sorted(batch)})")
