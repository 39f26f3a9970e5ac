"""The IM-VAE model (paper 3.2-3.3) in two variants, and ``build_model``.

API::

    model = build_model(cfg, n_items_x=..., n_items_y=..., seed=0)          # nnx.Module
    out = model(batch, key)        # ModelOutputs; key=None: evaluation (no dropout, z = mu)
    logits = model.score_items(out.h_x, item_ids, "x")   # any ids / the whole catalogue
    rows = model.items(ids, domain)                       # item embeddings

``batch`` is the Batch contract (``imvae_jax.data.batches``): ``seq_x/seq_y [B, T]``,
``pseudo_x/pseudo_y [B, T']``, ``target_domain [B]``, ``candidates [B, 1+K]`` (column 0 the
target), ``cold_start [B]``. Modules hold parameters only; with a ``key`` every dropout mask and
reparameterised sample is drawn from it (split inside), so ``jax.jit`` over
``nnx.split(model)`` state works in graph and tree mode.

Outputs (``imvae_jax.model.outputs``): posteriors ``z_x, z_y, z_a_x, z_a_y, z_t_x, z_t_y,
r_x, r_y``; priors for the six latents; ``scores [B, 1+K]`` logits of the row's target-domain
head; ``h_x, h_y [B, d]``; ``extras`` = ``{'disc_x', 'disc_y'}`` discriminator logits ``[B]`` in
the authors variant, ``{}`` otherwise. With ``use_cross_domain=False`` the ``z_t_*`` and ``r_*``
entries are absent from both dicts (the objective skips the terms that need them) and each head
decodes ``[z^d, z_a^d]`` only; cold-start rows are masked as in the full model (paper variant), so
the ablation gets no more input than IM-VAE and has nothing to decode a cold-start row from.

Cold-start rows (``batch['cold_start']``, no target-domain history):

* paper: in the target head, the domain-specific latents z^d, z_a^d are masked to 0 and
  r^.(z_t|.) replaces q(z_t|x,y) (Fig. 2), in training and evaluation; ``cold_start_mask='own'``
  keeps z_a^d (the pseudo-sequence's latent; the PSG recalls target-domain items for a user
  with no history there, which is what it is for);
* authors: only in evaluation, only the cross slot is replaced, by the mean of r (spec 2.11).

Variant switches (:class:`Switches`, from :func:`switches_for`):

=========================  ===================================  =======================================
switch                     paper                                authors (spec section)
=========================  ===================================  =======================================
``joint_item_table``       per-domain tables, id 0 = padding    one 2N table by source id, pad row N (2.1)
``position_embeddings``    P_S [T], P_A [T+T'], items x sqrt(d)  none, no scaling (2.1-2.2)
``padding_mask``           padding keys masked, masked mean     causal mask only, mean over padding (2.2-2.3)
``pseudo_input``           ``concat``: [history; pseudo]        ``interleave``: [h1,p1,...,hT,pT] (1.4)
``shared_pseudo_posterior`` no (own q(z_a|x_a) MLPs)            yes, q(z_a^x) uses q(z^x)'s MLP (2.4)
``posterior_mlp``          ``paper``: hidden ``mlp_hidden``     ``authors``: L2-normalise, d->2d tanh->2d;
                                                                cross head one Linear (2.4, 2.6)
``sigma``                  ``log``: log sigma = s               ``authors``: 0.1+0.9 softplus(min(s,.4)) (2.5)
``cross_query``            ``own``: Attn(X*, Y*, Y*) for z_t^y   ``other``: Attn(q=Y*, k=X*, v=Y*) (2.6)
``head``                   ``mlp``: MLP([z^x;z_t^y;z_a^x])       ``decoders``: per-latent MLPs + Linear (2.7)
``aug_slot_bug``           no                                   X's 3rd slot decodes z^x (2.7)
``scorer``                 ``dot``: h_u . e_v                   ``mlp``: MLP([h_u; e_v]) logits (2.8)
``discriminator``          no                                   disc_x/disc_y logits (2.9)
``priors``                 ``paper``: z_t N(0,I); per-domain    ``authors``: z_t N(0, sigma(1)^2); scalar
                           vector mu, log sigma                 mu, scalar frozen pre-scale (2.10)
``cold_start``             ``mask``: train + eval (Fig. 2)      ``authors``: eval only, cross slot (2.11)
=========================  ===================================  =======================================
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from imvae_jax.model.config import ModelConfig
from imvae_jax.model.encoders import (
    CrossAttentionEncoder,
    GaussianMLP,
    log_sigma_authors,
    log_sigma_paper,
    reparameterise,
)
from imvae_jax.model.items import DotScorer, ItemTable, MLPScorer, joint_index, per_domain_index
from imvae_jax.model.layers import MLP, Dense, Key, LayerNorm, SequenceEncoder, masked_mean, normal, split_key
from imvae_jax.model.outputs import Gaussian, ModelOutputs

Batch = Mapping[str, Any]
AUTHORS_PRIOR_SCALE_INIT = 1.0  # the authors' prior "logvar" init (frozen by the clamp, spec 2.10)


@dataclasses.dataclass(frozen=True)
class Switches:
    """Where the authors' computation departs from the paper's (table in the module docstring)."""

    joint_item_table: bool
    position_embeddings: bool
    padding_mask: bool
    pseudo_input: Literal["concat", "interleave"]
    shared_pseudo_posterior: bool
    posterior_mlp: Literal["paper", "authors"]
    sigma: Literal["log", "authors"]
    cross_query: Literal["own", "other"]
    head: Literal["mlp", "decoders"]
    aug_slot_bug: bool
    scorer: Literal["dot", "mlp"]
    discriminator: bool
    priors: Literal["paper", "authors"]
    cold_start: Literal["mask", "authors"]


PAPER = Switches(
    joint_item_table=False,
    position_embeddings=True,
    padding_mask=True,
    pseudo_input="concat",
    shared_pseudo_posterior=False,
    posterior_mlp="paper",
    sigma="log",
    cross_query="own",
    head="mlp",
    aug_slot_bug=False,
    scorer="dot",
    discriminator=False,
    priors="paper",
    cold_start="mask",
)
AUTHORS = Switches(
    joint_item_table=True,
    position_embeddings=False,
    padding_mask=False,
    pseudo_input="interleave",
    shared_pseudo_posterior=True,
    posterior_mlp="authors",
    sigma="authors",
    cross_query="other",
    head="decoders",
    aug_slot_bug=True,
    scorer="mlp",
    discriminator=True,
    priors="authors",
    cold_start="authors",
)


def switches_for(variant: str) -> Switches:
    if variant == "paper":
        return PAPER
    if variant == "authors":
        return AUTHORS
    raise ValueError(f"IM-VAE has variants 'paper' and 'authors', got {variant!r}")


# ----------------------------------------------------------------------------- input helpers
def interleave(history: jax.Array, pseudo: jax.Array) -> jax.Array:
    """``[h1, p1, h2, p2, ..., hT, pT]`` ``[B, 2T]`` from ``history [B, T]`` and the first T
    pseudo items (right-padded with 0 when fewer), the authors' pseudo input (spec 1.4)."""
    width = history.shape[1]
    pseudo = pseudo[:, :width]
    if pseudo.shape[1] < width:
        pseudo = jnp.pad(pseudo, ((0, 0), (0, width - pseudo.shape[1])))
    return jnp.stack([history, pseudo], axis=2).reshape(history.shape[0], 2 * width)


class Head(nnx.Module):
    """User representation h_u of one domain from ``[z_own, z_cross, z_aug]`` (paper 3.3.2).

    ``kind='mlp'``: one MLP on the concatenation (hidden ``hidden``). ``kind='decoders'``: the
    authors' ``down(concat(dec_own(z_own), dec_cross(z_cross), dec_own(z_aug)))``, each decoder
    ``d -> 2d (tanh) -> d``, ``down`` linear. Returns ``(h_u, decoded aug slot or None)``.
    """

    def __init__(
        self,
        dim: int,
        kind: str,
        hidden: Sequence[int],
        with_cross: bool,
        *,
        rngs: nnx.Rngs,
        own_init: str = "torch",
    ):
        slots = 3 if with_cross else 2
        self.kind = kind
        if kind == "mlp":
            self.mlp = MLP(slots * dim, hidden, dim, rngs=rngs)
        else:
            self.dec_own = MLP(dim, (2 * dim,), dim, rngs=rngs, init=own_init)
            if with_cross:
                self.dec_cross = MLP(dim, (2 * dim,), dim, rngs=rngs)
            self.down = Dense(slots * dim, dim, rngs=rngs)

    def __call__(
        self, z_own: jax.Array, z_cross: jax.Array | None, z_aug: jax.Array
    ) -> tuple[jax.Array, jax.Array | None]:
        if self.kind == "mlp":
            parts = [z_own] if z_cross is None else [z_own, z_cross]
            return self.mlp(jnp.concatenate([*parts, z_aug], axis=-1)), None
        own = self.dec_own(z_own)
        aug = own if z_aug is z_own else self.dec_own(z_aug)
        parts = [own] if z_cross is None else [own, self.dec_cross(z_cross)]
        return self.down(jnp.concatenate([*parts, aug], axis=-1)), aug


class IMVAE(nnx.Module):
    """IM-VAE; build it with :func:`build_model`. See the module docstring."""

    def __init__(
        self,
        cfg: ModelConfig,
        switches: Switches,
        items: ItemTable,
        *,
        rngs: nnx.Rngs,
    ):
        sw = switches
        d = cfg.dim
        if cfg.cold_start_mask not in ("all", "own"):
            raise ValueError(f"model.cold_start_mask must be 'all' or 'own', got {cfg.cold_start_mask!r}")
        if cfg.cold_start_mask != "all" and sw.cold_start != "mask":
            raise ValueError("model.cold_start_mask applies to the paper variant (the authors' code has its own rule)")
        self.cfg = cfg
        self.switches = sw
        self.items = items
        self.n_items_x, self.n_items_y = items.n_items_x, items.n_items_y
        log_sigma_fn = log_sigma_authors if sw.sigma == "authors" else log_sigma_paper
        if sw.position_embeddings:
            self.pos_seq = nnx.Param(normal(d**-0.5)(rngs.params(), (cfg.max_len, d)))
            self.pos_aug = nnx.Param(normal(d**-0.5)(rngs.params(), (cfg.max_len + cfg.pseudo_len, d)))
        self.encoder_x = SequenceEncoder(d, cfg.num_blocks, cfg.num_heads, cfg.dropout, rngs=rngs)
        self.encoder_y = SequenceEncoder(d, cfg.num_blocks, cfg.num_heads, cfg.dropout, rngs=rngs)

        authors_mlp = sw.posterior_mlp == "authors"

        def posterior(fan_in: int = d, init: str = "torch") -> GaussianMLP:
            return GaussianMLP(
                fan_in,
                (2 * d,) if authors_mlp else cfg.mlp_hidden,
                d,
                log_sigma_fn=log_sigma_fn,
                normalize=authors_mlp,
                input_dropout=cfg.encoder_dropout,
                rngs=rngs,
                init=init,
            )

        x_init = "xavier" if sw.head == "decoders" else "torch"  # the authors' X-only Xavier (2.13)
        self.post_x = posterior(init=x_init)  # q(z^x|x)
        self.post_y = posterior()  # q(z^y|y)
        if not sw.shared_pseudo_posterior:
            self.post_a_x = posterior()  # q(z_a^x|x_a)
            self.post_a_y = posterior()
        if cfg.use_cross_domain:
            self.r_x = posterior()  # r^x(z_t^x|x): stands in for q(z_t^x|x,y) in Y's head
            self.r_y = posterior()  # r^y(z_t^y|y): stands in for q(z_t^y|x,y) in X's head
            if cfg.cross_encoder == "attention":
                head_hidden = () if authors_mlp else cfg.mlp_hidden
                self.cross_t_y = CrossAttentionEncoder(
                    d, cfg.cross_heads, head_hidden, log_sigma_fn=log_sigma_fn, rngs=rngs
                )
                self.cross_t_x = CrossAttentionEncoder(
                    d, cfg.cross_heads, head_hidden, log_sigma_fn=log_sigma_fn, rngs=rngs
                )
                self.cross_norm = LayerNorm(d, eps=1e-5)  # one LayerNorm for both directions
            elif cfg.cross_encoder == "mlp":
                self.cross_t_y = posterior(2 * d)  # q(z_t^y | [X; Y])
                self.cross_t_x = posterior(2 * d)
            else:
                raise ValueError(f"model.cross_encoder must be 'attention' or 'mlp', got {cfg.cross_encoder!r}")
        self.head_x = Head(d, sw.head, cfg.mlp_hidden, cfg.use_cross_domain, rngs=rngs, own_init=x_init)
        self.head_y = Head(d, sw.head, cfg.mlp_hidden, cfg.use_cross_domain, rngs=rngs)
        self.scorer = MLPScorer(d, cfg.scorer_hidden, rngs=rngs) if sw.scorer == "mlp" else DotScorer()
        if sw.discriminator:
            self.disc_x = Dense(2 * d, 1, rngs=rngs)
            self.disc_y = Dense(2 * d, 1, rngs=rngs)
        if sw.priors == "authors":  # one learned scalar mean, one (frozen) scalar pre-scale
            self.prior_x_mu = nnx.Param(jnp.zeros((), jnp.float32))
            self.prior_x_scale = nnx.Param(jnp.full((), AUTHORS_PRIOR_SCALE_INIT, jnp.float32))
            self.prior_y_mu = nnx.Param(jnp.zeros((), jnp.float32))
            self.prior_y_scale = nnx.Param(jnp.full((), AUTHORS_PRIOR_SCALE_INIT, jnp.float32))
        else:  # learned per-domain mean and log sigma vectors
            self.prior_x_mu = nnx.Param(jnp.zeros((d,), jnp.float32))
            self.prior_x_scale = nnx.Param(jnp.zeros((d,), jnp.float32))
            self.prior_y_mu = nnx.Param(jnp.zeros((d,), jnp.float32))
            self.prior_y_scale = nnx.Param(jnp.zeros((d,), jnp.float32))
        self.log_sigma_fn = log_sigma_fn

    # ------------------------------------------------------------------------- pieces
    def encode_sequence(
        self, seq: jax.Array, pseudo: jax.Array, domain: str, keys: Sequence[Key]
    ) -> tuple[jax.Array, jax.Array | None, jax.Array, jax.Array]:
        """One domain's history and pseudo-sequence through its encoder.

        Returns ``(star [B, W, d], padding [B, W] | None, pooled [B, d], pooled_aug [B, d])``.
        """
        sw, cfg = self.switches, self.cfg
        encoder = self.encoder_x if domain == "x" else self.encoder_y
        width = seq.shape[1]
        if sw.pseudo_input == "interleave":
            aug = interleave(seq, pseudo)
        else:
            aug = jnp.concatenate([seq, pseudo], axis=1)
        emb, emb_aug = self.items(seq, domain), self.items(aug, domain)
        if sw.position_embeddings:
            if width > cfg.max_len or pseudo.shape[1] > cfg.pseudo_len:
                raise ValueError(
                    f"batch widths seq {width} / pseudo {pseudo.shape[1]} exceed model.max_len "
                    f"{cfg.max_len} / model.pseudo_len {cfg.pseudo_len} (the position embeddings)"
                )
            scale = math.sqrt(cfg.dim)
            pos = self.pos_seq[...][cfg.max_len - width :]
            pos_aug = self.pos_aug[...]
            pos_aug = jnp.concatenate(
                [pos_aug[cfg.max_len - width : cfg.max_len], pos_aug[cfg.max_len : cfg.max_len + pseudo.shape[1]]]
            )
            emb = emb * scale + pos[None]
            emb_aug = emb_aug * scale + pos_aug[None]
        padding = (seq > 0) if sw.padding_mask else None
        padding_aug = (aug > 0) if sw.padding_mask else None
        star = encoder(emb, padding, keys[0])
        star_aug = encoder(emb_aug, padding_aug, keys[1])
        return star, padding, masked_mean(star, padding), masked_mean(star_aug, padding_aug)

    def cross(
        self,
        encoder: nnx.Module,
        own: tuple[jax.Array, jax.Array | None],
        other: tuple[jax.Array, jax.Array | None],
        pooled_xy: jax.Array,
        key: Key,
    ) -> Gaussian:
        """q(z_t | x, y) feeding ``own``'s head; ``own``/``other`` = (star, padding); the MLP
        encoder reads ``pooled_xy = [X; Y]`` (the same order for both directions, spec 2.6)."""
        if self.cfg.cross_encoder == "mlp":
            return encoder(pooled_xy, key)
        if self.switches.cross_query == "own":  # paper: Attention(X*, Y*, Y*) for z_t^y
            query, key_in, value, q_pad, k_pad = own[0], other[0], other[0], own[1], other[1]
        else:  # authors: MHA(query=Y*, key=X*, value=Y*) for z_t^y (spec 2.6)
            query, key_in, value, q_pad, k_pad = other[0], own[0], other[0], other[1], own[1]
        return encoder(query, key_in, value, norm=self.cross_norm, query_padding=q_pad, key_padding=k_pad)

    def priors(self) -> dict[str, Gaussian]:
        d = self.cfg.dim

        def full(value: jax.Array) -> jax.Array:
            return jnp.broadcast_to(value, (1, d)).astype(jnp.float32)

        prior_x = Gaussian(full(self.prior_x_mu[...]), full(self.log_sigma_fn(self.prior_x_scale[...])))
        prior_y = Gaussian(full(self.prior_y_mu[...]), full(self.log_sigma_fn(self.prior_y_scale[...])))
        out = {"z_x": prior_x, "z_a_x": prior_x, "z_y": prior_y, "z_a_y": prior_y}
        if self.cfg.use_cross_domain:
            # paper: N(0, I); authors: N(0, sigma(1.0)^2), their "ones" passed as a pre-scale
            log_sigma = self.log_sigma_fn(jnp.full((), AUTHORS_PRIOR_SCALE_INIT)) if self.switches.priors == "authors" else 0.0
            standard = Gaussian(jnp.zeros((1, d), jnp.float32), full(jnp.asarray(log_sigma)))
            out["z_t_x"] = standard
            out["z_t_y"] = standard
        return out

    def score_items(self, h: jax.Array, item_ids: jax.Array, domain: Any) -> jax.Array:
        """Logits ``[B, C]`` of user representations ``h [B, d]`` for domain ids ``item_ids``
        ``[C]`` (the same items for every row, e.g. ``jnp.arange(1, n_items + 1)`` for the whole
        catalogue) or ``[B, C]``. ``domain``: 'x'/'y'/0/1, or ``[B, 1]`` per-row domains."""
        return self.scorer(h, self.items(item_ids, domain))

    # ------------------------------------------------------------------------- forward
    def __call__(self, batch: Batch, key: Key = None, latents: Mapping[str, jax.Array] | None = None) -> ModelOutputs:
        """One forward pass; ``key`` None = evaluation (z = posterior means, no dropout).

        ``latents``: values (``[d]`` or ``[B, d]``) used in place of the named latents'
        samples or means, e.g. the same z for every row to probe what the heads read
        (:mod:`imvae_jax.eval.probe`); the posteriors returned are unchanged.
        """
        sw, cfg = self.switches, self.cfg
        train = key is not None
        keys = split_key(key, 20)
        seq_x, seq_y = jnp.asarray(batch["seq_x"]), jnp.asarray(batch["seq_y"])
        x = self.encode_sequence(seq_x, jnp.asarray(batch["pseudo_x"]), "x", keys[0:2])
        y = self.encode_sequence(seq_y, jnp.asarray(batch["pseudo_y"]), "y", keys[2:4])
        x_star, x_pad, x_pool, x_aug = x
        y_star, y_pad, y_pool, y_aug = y
        post = {
            "z_x": self.post_x(x_pool, keys[4]),
            "z_y": self.post_y(y_pool, keys[5]),
            "z_a_x": (self.post_x if sw.shared_pseudo_posterior else self.post_a_x)(x_aug, keys[6]),
            "z_a_y": (self.post_y if sw.shared_pseudo_posterior else self.post_a_y)(y_aug, keys[7]),
        }
        if cfg.use_cross_domain:
            post["r_x"] = self.r_x(x_pool, keys[8])
            post["r_y"] = self.r_y(y_pool, keys[9])
            pooled_xy = jnp.concatenate([x_pool, y_pool], axis=-1)
            post["z_t_y"] = self.cross(self.cross_t_y, (x_star, x_pad), (y_star, y_pad), pooled_xy, keys[10])
            post["z_t_x"] = self.cross(self.cross_t_x, (y_star, y_pad), (x_star, x_pad), pooled_xy, keys[11])
        sample_keys = dict(zip(sorted(post), keys[12:]))
        z = {name: reparameterise(g, sample_keys[name]) for name, g in post.items()}
        for name, value in (latents or {}).items():
            if name not in z:
                raise KeyError(f"latents: no latent {name!r} in this model (has {sorted(z)})")
            z[name] = jnp.broadcast_to(jnp.asarray(value, z[name].dtype), z[name].shape)

        target_domain = jnp.asarray(batch["target_domain"])
        cold = jnp.asarray(batch["cold_start"]).astype(bool)
        cold_x = (cold & (target_domain == 0))[:, None]
        cold_y = (cold & (target_domain == 1))[:, None]

        def head_inputs(own: str, cross: str, r: str, cold_rows: jax.Array):
            z_own, z_aug = z[f"z_{own}"], z[f"z_a_{own}"]
            if sw.aug_slot_bug and own == "x":
                z_aug = z_own  # model.py:286: rec_x_aug = decode(z^x)
            z_cross = z.get(f"z_t_{cross}")
            if sw.cold_start == "mask":  # also without cross latents: the ablation sees what IM-VAE sees
                zero = jnp.zeros_like(z_own)
                z_own = jnp.where(cold_rows, zero, z_own)
                if cfg.cold_start_mask == "all":
                    z_aug = jnp.where(cold_rows, zero, z_aug)
                if z_cross is not None:
                    z_cross = jnp.where(cold_rows, z[r], z_cross)
            elif z_cross is not None and not train:  # authors: evaluation only, the r mean in the cross slot
                z_cross = jnp.where(cold_rows, z[r], z_cross)
            return z_own, z_cross, z_aug

        h_x, rec_aug_x = self.head_x(*head_inputs("x", "y", "r_y", cold_x))
        h_y, rec_aug_y = self.head_y(*head_inputs("y", "x", "r_x", cold_y))
        h_target = jnp.where((target_domain == 0)[:, None], h_x, h_y)
        candidates = jnp.asarray(batch["candidates"])
        scores = self.score_items(h_target, candidates, target_domain[:, None])
        extras = {}
        if sw.discriminator:
            extras["disc_x"] = self.disc_x(jnp.concatenate([x_aug, rec_aug_x], axis=-1))[:, 0]
            extras["disc_y"] = self.disc_y(jnp.concatenate([y_aug, rec_aug_y], axis=-1))[:, 0]
        return ModelOutputs(
            posteriors=post, priors=self.priors(), scores=scores, h_x=h_x, h_y=h_y, extras=extras
        )


# ----------------------------------------------------------------------------- construction
def build_model(
    cfg: ModelConfig,
    *,
    n_items_x: int,
    n_items_y: int,
    seed: int,
    source_ids_x: Sequence | np.ndarray | None = None,
    source_ids_y: Sequence | np.ndarray | None = None,
    joint_size: int | None = None,
) -> nnx.Module:
    """The model of ``cfg.variant`` (``paper``, ``authors`` or ``sasrec``), initialised from ``seed``.

    The authors variant needs ``source_ids_x/y`` (the dataset's ``meta['item_ids_x/y']``, index
    0 = padding) and builds the joint table of ``2 * joint_size`` rows (default: max source id
    + 1, the authors' N: 24,507 for Cloth-Sport).
    """
    if n_items_x < 1 or n_items_y < 1:
        raise ValueError(f"n_items_x={n_items_x}, n_items_y={n_items_y}: each domain needs items")
    rngs = nnx.Rngs(params=seed)
    d = cfg.dim
    if cfg.variant == "authors":
        if source_ids_x is None or source_ids_y is None:
            raise ValueError(
                "variant='authors' indexes its joint table by source item ids: pass source_ids_x/"
                "source_ids_y (the dataset's meta['item_ids_x'/'item_ids_y'])"
            )
        if joint_size is None:
            joint_size = 1 + max(int(v) for v in [*list(source_ids_x)[1:], *list(source_ids_y)[1:]])
        index_x = joint_index(source_ids_x, n_items_x, joint_size, "source_ids_x")
        index_y = joint_index(source_ids_y, n_items_y, joint_size, "source_ids_y")
        items = ItemTable(index_x, index_y, 2 * joint_size, d, std=1.0, rngs=rngs)
    else:
        index_x, index_y, rows = per_domain_index(n_items_x, n_items_y)
        items = ItemTable(index_x, index_y, rows, d, std=d**-0.5, rngs=rngs)
    if cfg.variant == "sasrec":
        from imvae_jax.model.sasrec import SASRec

        return SASRec(cfg, items, rngs=rngs)
    return IMVAE(cfg, switches_for(cfg.variant), items, rngs=rngs)
