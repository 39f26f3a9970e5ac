"""The pieces of the IM-VAE objective as pure functions (paper 3.3-3.4; authors' code: spec 3).

Two levels:

* math on arrays: :func:`bce_with_logits`, :func:`sampled_softmax`, :func:`authors_bce`,
  :func:`adaptive_weight`;
* term functions ``fn(outputs, batch, cfg) -> [B]`` (one value per row, before any masking),
  and factories that build them for one domain (``"x"`` or ``"y"``). The objective
  (:mod:`imvae_jax.losses.objective`) weights, masks and averages them.

Batch-level scales (the authors' code collapses its masks to batch fractions, spec 3.3) are
``scale(batch, mask, cfg) -> scalar`` functions at the end of this module.

Names follow the paper. For domain X: ``z_x`` = q(z^x|x), ``z_a_x`` = q(z_a^x|x_a),
``z_t_y`` = q(z_t^y|x,y) (feeds X's head), ``r_y`` = r^y(z_t^y|y). Y is symmetric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp

from imvae_jax.losses.config import LossConfig
from imvae_jax.losses.kl import kl_diag_gaussian
from imvae_jax.model.outputs import ModelOutputs

Batch = Mapping[str, Any]
Domain = Literal["x", "y"]
TermFn = Callable[[ModelOutputs, Batch, LossConfig], jax.Array]
ScaleFn = Callable[[Batch, jax.Array, LossConfig], jax.Array]

DOMAIN_INDEX = {"x": 0, "y": 1}  # batch["target_domain"] values
OTHER = {"x": "y", "y": "x"}
BCE_LOG_CLAMP = 100.0  # torch.nn.BCELoss clamps log(p) at -100


# --------------------------------------------------------------------------------- array math
def bce_with_logits(scores: jax.Array) -> jax.Array:
    """Eq. 9 on one row: column 0 has label 1, the rest label 0; summed over candidates.

    ``scores [B, C]`` logits -> ``[B]``. ``-log sigmoid(s) = softplus(-s)`` and
    ``-log(1 - sigmoid(s)) = softplus(s)``: stable for any logit.
    """
    scores = scores.astype(jnp.promote_types(scores.dtype, jnp.float32))
    return jax.nn.softplus(-scores[:, 0]) + jnp.sum(jax.nn.softplus(scores[:, 1:]), axis=1)


def sampled_softmax(scores: jax.Array) -> jax.Array:
    """Cross-entropy of the target (column 0) against the sampled candidates: ``[B, C] -> [B]``."""
    scores = scores.astype(jnp.promote_types(scores.dtype, jnp.float32))
    return jax.nn.logsumexp(scores, axis=1) - scores[:, 0]


def authors_bce(scores: jax.Array) -> jax.Array:
    """``nn.BCELoss`` on ``sigmoid(scores)`` with labels ``[1, 0, ..]``, averaged over the C
    candidates of a row: ``[B, C] -> [B]`` (the mean of these over rows is the code's mean
    over ``B * C``). The log is clamped at -100 as torch does; with logits that is
    ``min(softplus(-/+s), 100)``."""
    scores = scores.astype(jnp.promote_types(scores.dtype, jnp.float32))
    positive = jnp.minimum(jax.nn.softplus(-scores[:, :1]), BCE_LOG_CLAMP)
    negative = jnp.minimum(jax.nn.softplus(scores[:, 1:]), BCE_LOG_CLAMP)
    return jnp.mean(jnp.concatenate([positive, negative], axis=1), axis=1)


def adaptive_weight(length: jax.Array, max_len: int, a: float = 0.8, b: float = 0.8) -> jax.Array:
    """Noise-adaptive denoising weight (paper 3.4.3): ``lambda_d = exp(a L / T) - b``.

    ``length [B]`` is the unpadded history length L (clipped to T), ``max_len`` is T. With
    a = b = 0.8: 0.2 at L = 0, ``e^0.8 - 0.8 = 1.4255`` at L = T. ``a = b = 0`` gives a
    constant 1 (no adaptation).
    """
    length = jnp.asarray(length, jnp.float32)
    return jnp.exp(a * length / max_len) - b


# ------------------------------------------------------------------------ paper term functions
def reconstruction(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
    """-log p(target domain | its three latents), estimated on the sampled candidates: ``[B]``.

    ``cfg.reconstruction``: ``"bce"`` (Eq. 9, summed over target + negatives) or
    ``"softmax"`` (sampled softmax). ``outputs.scores`` is already the row's target-domain
    head, so this term needs no domain mask.
    """
    if cfg.reconstruction == "bce":
        return bce_with_logits(outputs.scores)
    if cfg.reconstruction == "softmax":
        return sampled_softmax(outputs.scores)
    raise ValueError(f"LossConfig.reconstruction: unknown value {cfg.reconstruction!r}")


def kl_to_prior(latent: str) -> TermFn:
    """``KL(posteriors[latent] ‖ priors[latent])`` per row, one of the six ELBO KLs (Eq. 8)."""

    def fn(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
        return kl_diag_gaussian(outputs.posteriors[latent], outputs.priors[latent])

    fn.__name__ = f"kl_{latent}"
    return fn


def informative_disentangle(domain: Domain) -> TermFn:
    """Informative + disentangle regulariser of ``domain`` (Eq. 17): for X,
    ``KL(q(z_t^y|x,y) ‖ r^y(z_t^y|y))``, i.e. ``KL(z_t_y ‖ r_y)``; for Y ``KL(z_t_x ‖ r_x)``."""
    other = OTHER[domain]

    def fn(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
        post = outputs.posteriors
        return kl_diag_gaussian(post[f"z_t_{other}"], post[f"r_{other}"])

    fn.__name__ = f"informative_disentangle_{domain}"
    return fn


def denoising(domain: Domain) -> TermFn:
    """Denoising regulariser of ``domain`` with its adaptive weight (Eq. 18, 3.4.3):
    for X, ``lambda_d(len_x) * KL(q(z^x|x) ‖ q(z_a^x|x))`` per row.

    Sign: Eq. 18 gives ``I(Z^X; Z_a^X) >= -KL(q(z^x|x) ‖ q(z_a^x|x))`` (+ an intractable
    constant), and 3.4.3 *maximises* that mutual information, so the KL is *minimised* in
    both domains: both denoising KLs enter the loss with a positive weight. The final
    equation of 3.4.5 writes ``- lambda_a {lambda^x KL_x - lambda^y KL_y}`` inside a max, which
    would maximise Y's KL, i.e. reward *less* mutual information in Y; that breaks the
    X/Y symmetry the paper states ("the regularizers for domain Y are obtained
    symmetrically") and is read as a typo (the authors' code also adds both, spec 3.4).

    T is the padded history length of the domain (``batch["seq_x"].shape[1]``), L is
    ``batch["len_x"]``: the row's real history length, clipped to T.
    """

    def fn(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
        post = outputs.posteriors
        kl = kl_diag_gaussian(post[f"z_{domain}"], post[f"z_a_{domain}"])
        weight = adaptive_weight(
            batch[f"len_{domain}"], _max_len(batch, domain), cfg.adaptive_a, cfg.adaptive_b
        )
        return weight * kl

    fn.__name__ = f"denoising_{domain}"
    return fn


# ---------------------------------------------------------------------- authors term functions
def authors_reconstruction(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
    """The code's ``L_cls`` per row (:func:`authors_bce`); its row mean is the mean over 2B."""
    return authors_bce(outputs.scores)


def authors_discriminator(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
    """``m_i (-log a^X_i) + n_i (-log a^Y_i)`` per row, the discriminator BCE on positives only
    (spec 2.9, 3.3): ``a = sigmoid(extras["disc_<d>"])``, log clamped at -100, ``m``/``n`` the
    row's target domain. Scale by :func:`non_tailed_fraction` for the code's ``L_disc``."""
    target_x = is_target(batch, "x")
    logit_x = _f32(outputs.extras["disc_x"]).reshape(target_x.shape)
    logit_y = _f32(outputs.extras["disc_y"]).reshape(target_x.shape)
    loss_x = jnp.minimum(jax.nn.softplus(-logit_x), BCE_LOG_CLAMP)
    loss_y = jnp.minimum(jax.nn.softplus(-logit_y), BCE_LOG_CLAMP)
    return target_x * loss_x + (1.0 - target_x) * loss_y


def authors_generative_kl(domain: Domain) -> TermFn:
    """The code's ``KLD1_Generative`` (G_X) per row: ``KL(z_t_y ‖ p) + KL(z_x ‖ p) +
    KL(z_a_x ‖ p)`` (spec 3.2); ``KLD2_Generative`` for Y."""
    other = OTHER[domain]
    latents = (f"z_t_{other}", f"z_{domain}", f"z_a_{domain}")

    def fn(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
        return sum(
            kl_diag_gaussian(outputs.posteriors[name], outputs.priors[name]) for name in latents
        )

    fn.__name__ = f"authors_generative_kl_{domain}"
    return fn


def authors_denoising(domain: Domain) -> TermFn:
    """The code's ``KLD1_aug`` (A_X) per row: ``KL(q(z_a^x) ‖ q(z^x))``, the *reverse* of the
    paper's direction, and without a per-row adaptive weight (that is a batch scale,
    :func:`mean_adaptive_weight`)."""

    def fn(outputs: ModelOutputs, batch: Batch, cfg: LossConfig) -> jax.Array:
        post = outputs.posteriors
        return kl_diag_gaussian(post[f"z_a_{domain}"], post[f"z_{domain}"])

    fn.__name__ = f"authors_denoising_{domain}"
    return fn


# ------------------------------------------------------------ batch-level scales (authors code)
def target_fraction(domain: Domain) -> ScaleFn:
    """``f_X = mean_i m_i`` over the real rows: the code's domain mask, collapsed to a fraction."""

    def scale(batch: Batch, mask: jax.Array, cfg: LossConfig) -> jax.Array:
        return masked_mean(is_target(batch, domain), mask)

    scale.__name__ = f"target_fraction_{domain}"
    return scale


def non_tailed_fraction(batch: Batch, mask: jax.Array, cfg: LossConfig) -> jax.Array:
    """``phi = mean_i (1 - tailed_i)`` over the real rows."""
    return masked_mean(1.0 - jnp.asarray(batch["tailed"], jnp.float32), mask)


def mean_adaptive_weight(domain: Domain) -> ScaleFn:
    """``f_D * mean_j w^D_j``: the code's adaptive weight is the batch mean over *all* real rows
    (both target domains), times the domain fraction (spec 3.3)."""

    def scale(batch: Batch, mask: jax.Array, cfg: LossConfig) -> jax.Array:
        weight = adaptive_weight(
            batch[f"len_{domain}"], _max_len(batch, domain), cfg.adaptive_a, cfg.adaptive_b
        )
        return target_fraction(domain)(batch, mask, cfg) * masked_mean(weight, mask)

    scale.__name__ = f"mean_adaptive_weight_{domain}"
    return scale


# ------------------------------------------------------------------------------------ helpers
def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """``sum(mask * values) / sum(mask)`` (0 for an all-padding batch): ``[B], [B] -> []``."""
    mask = jnp.asarray(mask, jnp.float32)
    return jnp.sum(mask * values) / jnp.maximum(jnp.sum(mask), 1.0)


def is_target(batch: Batch, domain: Domain) -> jax.Array:
    """``[B]`` float: 1 where the row's target is in ``domain``."""
    return (jnp.asarray(batch["target_domain"]) == DOMAIN_INDEX[domain]).astype(jnp.float32)


def _max_len(batch: Batch, domain: Domain) -> int:
    """T: the padded length of the domain's history (static under jit)."""
    return int(jnp.shape(batch[f"seq_{domain}"])[1])


def _f32(x: jax.Array) -> jax.Array:
    return jnp.asarray(x).astype(jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))
