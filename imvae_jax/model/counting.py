"""Parameter and FLOP counts from the config, in closed form.

* :func:`count_params` - the number of scalars in the model's ``nnx.Param`` tree (tested
  against the real tree). Authors variant, N = 24,507, d = 128, h = 32: **7,637,319** (spec 2.14:
  ``2N d + 82 d^2 + 92 d + 2 d h + 2 h + 7``).
* :func:`forward_flops` - matmul FLOPs (2 per multiply-add; softmax, LayerNorm and other
  element-wise work, gathers and the optimiser not counted, as in spec 9) of one row's
  forward pass. ``convention="implementation"`` counts what this package computes (tested
  against the ``dot_general``s of the traced forward, :func:`jaxpr_matmul_flops`);
  ``convention="authors"`` (authors variant only) counts the authors' PyTorch computation,
  which decodes z^x twice, scores both heads and, in evaluation, runs both the normal and the
  cold-start heads, with the scorer's user half recomputed per candidate (spec 9).
* :func:`training_flops_per_row` - forward + backward = 3 x forward (spec 9). Authors
  convention, Cloth-Sport: **177,884,928** (177.9 MFLOP) per training row with one negative.

The counts use ``cfg.max_len`` and ``cfg.pseudo_len`` as the batch widths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax

from imvae_jax.model.config import ModelConfig

Convention = Literal["implementation", "authors"]


def _switches(cfg: ModelConfig):
    from imvae_jax.model.imvae import switches_for

    return switches_for(cfg.variant)


def _mlp_params(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _mlp_flops(sizes: Sequence[int]) -> int:
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))


@dataclasses.dataclass(frozen=True)
class _Shapes:
    """The widths every count needs, derived from the config and the variant."""

    d: int
    posterior: tuple[int, ...]  # hidden sizes of q / r encoders
    cross_head: tuple[int, ...]  # hidden sizes after the cross attention pooling
    cross_mlp: tuple[int, ...]  # hidden sizes of the MLP cross encoder on [X; Y]
    head_slots: int


def _shapes(cfg: ModelConfig) -> _Shapes:
    d = cfg.dim
    authors = _switches(cfg).posterior_mlp == "authors"
    return _Shapes(
        d=d,
        posterior=(2 * d,) if authors else tuple(cfg.mlp_hidden),
        cross_head=() if authors else tuple(cfg.mlp_hidden),
        cross_mlp=(2 * d,) if authors else tuple(cfg.mlp_hidden),
        head_slots=3 if cfg.use_cross_domain else 2,
    )


def _encoder_params(cfg: ModelConfig) -> int:
    d = cfg.dim
    return cfg.num_blocks * (6 * d * d + 10 * d) + 2 * d  # MHA 4d^2+4d, FFN 2d^2+2d, 2 LN; last LN


def count_params(
    cfg: ModelConfig, *, n_items_x: int, n_items_y: int, joint_size: int | None = None
) -> int:
    """Scalars in the ``nnx.Param`` tree of ``build_model(cfg, ...)``. The authors variant
    needs ``joint_size`` (N; its table has 2N rows)."""
    d = cfg.dim
    if cfg.variant == "authors":
        if joint_size is None:
            raise ValueError("the authors variant's parameter count needs joint_size (their N)")
        table = 2 * joint_size * d
    else:
        table = (n_items_x + n_items_y + 2) * d
    if cfg.variant == "sasrec":
        return table + cfg.max_len * d + 2 * _encoder_params(cfg)
    sw = _switches(cfg)
    s = _shapes(cfg)
    total = table + 2 * _encoder_params(cfg)
    if sw.position_embeddings:
        total += (2 * cfg.max_len + cfg.pseudo_len) * d
    posterior = _mlp_params([d, *s.posterior, 2 * d])
    n_posteriors = 2 + (0 if sw.shared_pseudo_posterior else 2) + (2 if cfg.use_cross_domain else 0)
    total += n_posteriors * posterior
    if cfg.use_cross_domain:
        if cfg.cross_encoder == "attention":
            total += 2 * (4 * d * d + 4 * d + _mlp_params([d, *s.cross_head, 2 * d])) + 2 * d
        else:
            total += 2 * _mlp_params([2 * d, *s.cross_mlp, 2 * d])
    if sw.head == "mlp":
        total += 2 * _mlp_params([s.head_slots * d, *cfg.mlp_hidden, d])
    else:
        decoders = 2 if cfg.use_cross_domain else 1
        total += 2 * (decoders * _mlp_params([d, 2 * d, d]) + s.head_slots * d * d + d)
    if sw.scorer == "mlp":
        total += _mlp_params([2 * d, cfg.scorer_hidden, 1])
    if sw.discriminator:
        total += 2 * (2 * d + 1)
    total += 4 if sw.priors == "authors" else 4 * d
    return total


def _sequence_flops(cfg: ModelConfig, length: int) -> int:
    d = cfg.dim
    return cfg.num_blocks * (12 * length * d * d + 4 * length * length * d)


def forward_flops(
    cfg: ModelConfig,
    *,
    n_negatives: int = 1,
    training: bool = True,
    convention: Convention = "implementation",
) -> int:
    """Matmul FLOPs of one row's forward pass with ``1 + n_negatives`` candidates."""
    d, t, c = cfg.dim, cfg.max_len, 1 + n_negatives
    if cfg.variant == "sasrec":
        return 2 * _sequence_flops(cfg, t) + 2 * d * c
    sw = _switches(cfg)
    if convention == "authors" and cfg.variant != "authors":
        raise ValueError("convention='authors' counts the authors' code: use variant='authors'")
    s = _shapes(cfg)
    aug = 2 * t if sw.pseudo_input == "interleave" else t + cfg.pseudo_len
    total = 2 * (_sequence_flops(cfg, t) + _sequence_flops(cfg, aug))
    posterior = _mlp_flops([d, *s.posterior, 2 * d])
    total += (6 if cfg.use_cross_domain else 4) * posterior  # q x4 (+ r x2)
    if cfg.use_cross_domain:
        if cfg.cross_encoder == "attention":
            total += 2 * (8 * t * d * d + 4 * t * t * d + _mlp_flops([d, *s.cross_head, 2 * d]))
        else:
            total += 2 * _mlp_flops([2 * d, *s.cross_mlp, 2 * d])
    authors_code = convention == "authors"
    heads = 2 if (training or not authors_code) else 4  # the authors' eval runs o- and cs-heads
    if sw.head == "mlp":
        total += heads * _mlp_flops([s.head_slots * d, *cfg.mlp_hidden, d])
    else:
        decoder = _mlp_flops([d, 2 * d, d])
        if authors_code:  # rec_x, rec_x_aug, rec_y, rec_y_aug, rec_t (x2) (+ 2 r decodes in eval)
            n_decoders = 6 if training else 8
        else:  # z^x decoded once (the aug slot reuses it); cold-start rows select the cross latent
            n_decoders = 3 + (2 if cfg.use_cross_domain else 0)
        total += n_decoders * decoder + heads * 2 * s.head_slots * d * d
    if sw.scorer == "mlp":
        h = cfg.scorer_hidden
        if authors_code:
            total += heads * c * 2 * (2 * d * h + h)
        else:
            total += 2 * d * h + c * (2 * d * h + 2 * h)
    else:
        total += 2 * d * c
    if sw.discriminator:
        total += 2 * 2 * 2 * d
    return total


def training_flops_per_row(
    cfg: ModelConfig, *, n_negatives: int = 1, convention: Convention = "implementation"
) -> int:
    """Forward + backward (= 3 x forward, spec 9) matmul FLOPs of one training row."""
    return 3 * forward_flops(cfg, n_negatives=n_negatives, training=True, convention=convention)


def jaxpr_matmul_flops(fn: Callable[..., Any], *args: Any) -> int:
    """Matmul FLOPs (2 per multiply-add) of every ``dot_general`` in ``fn(*args)``'s jaxpr,
    sub-jaxprs included: an independent count to check the closed forms against."""

    def walk(jaxpr) -> int:
        total = 0
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                (lhs_c, rhs_c), (lhs_b, rhs_b) = eqn.params["dimension_numbers"]
                lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
                free_rhs = math.prod(n for i, n in enumerate(rhs) if i not in rhs_c and i not in rhs_b)
                total += 2 * math.prod(lhs) * free_rhs
            for value in eqn.params.values():
                for sub in value if isinstance(value, (list, tuple)) else (value,):
                    if isinstance(sub, jax.extend.core.ClosedJaxpr):
                        total += walk(sub.jaxpr)
                    elif isinstance(sub, jax.extend.core.Jaxpr):
                        total += walk(sub)
        return total

    return walk(jax.make_jaxpr(fn)(*args).jaxpr)
