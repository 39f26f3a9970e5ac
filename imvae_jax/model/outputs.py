"""What the model hands to the objective and to evaluation: plain pytrees, no behaviour.

This is the contract between ``imvae_jax.model`` (producer) and ``imvae_jax.losses`` /
``imvae_jax.eval`` (consumers). Latent names follow the paper (section 3.3):

=========  ==========================  ==========================================
name       distribution                 used for
=========  ==========================  ==========================================
``z_x``    q(z^x | x)                   X's head; domain-specific, real history
``z_y``    q(z^y | y)                   Y's head
``z_a_x``  q(z_a^x | x_a)               X's head; from the pseudo-sequence of X
``z_a_y``  q(z_a^y | y_a)               Y's head
``z_t_y``  q(z_t^y | x, y)              X's head; information moved from Y to X
``z_t_x``  q(z_t^x | x, y)              Y's head; information moved from X to Y
``r_y``    r^y(z_t^y | y)               stands in for q(z_t^y|x,y) for X-cold-start rows
``r_x``    r^x(z_t^x | x)               stands in for q(z_t^x|x,y) for Y-cold-start rows
=========  ==========================  ==========================================
"""

from __future__ import annotations

from typing import NamedTuple

import jax

LATENTS = ("z_x", "z_y", "z_a_x", "z_a_y", "z_t_x", "z_t_y")
POSTERIORS = LATENTS + ("r_x", "r_y")


class Gaussian(NamedTuple):
    """A diagonal Gaussian N(mu, exp(log_sigma)^2). Shapes ``[B, d]`` (priors: broadcastable)."""

    mu: jax.Array
    log_sigma: jax.Array


class ModelOutputs(NamedTuple):
    """Everything one forward pass produces.

    posteriors: name -> Gaussian ``[B, d]`` for every name in :data:`POSTERIORS`.
    priors:     name -> Gaussian broadcastable to ``[B, d]`` for every name in :data:`LATENTS`.
    scores:     ``[B, C]`` logits of the row's *target-domain* head for ``batch['candidates']``
                (column 0 is the target).
    h_x, h_y:   ``[B, d]`` user representations of X's and Y's heads (for full-catalogue ranking).
    extras:     variant-specific tensors, e.g. the authors variant's discriminator logits
                ``disc_x``, ``disc_y`` ``[B]``.
    """

    posteriors: dict[str, Gaussian]
    priors: dict[str, Gaussian]
    scores: jax.Array
    h_x: jax.Array
    h_y: jax.Array
    extras: dict[str, jax.Array]
