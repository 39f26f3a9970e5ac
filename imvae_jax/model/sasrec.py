"""Single-domain SASRec baseline in the same engine (``build_model`` with ``variant='sasrec'``).

Each domain has its own causal self-attention encoder over its own history (the paper
variant's embeddings, position embeddings P_S and :class:`SequenceEncoder`); the user
representation is the last position (``sasrec_readout='last'``) or the masked mean
(``'mean'``); scores are dot products with the target domain's item embeddings. The other
domain and the pseudo-sequences are ignored. Outputs have empty ``posteriors``/``priors``
(the objective's reconstruction-only recipe applies), ``h_x``/``h_y`` from each domain's
encoder, and the same ``score_items`` as IM-VAE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from imvae_jax.model.config import ModelConfig
from imvae_jax.model.items import DotScorer, ItemTable
from imvae_jax.model.layers import Key, SequenceEncoder, masked_mean, normal, split_key
from imvae_jax.model.outputs import ModelOutputs


class SASRec(nnx.Module):
    """Two independent SASRec encoders (X, Y) sharing one back-to-back item table."""

    def __init__(self, cfg: ModelConfig, items: ItemTable, *, rngs: nnx.Rngs):
        d = cfg.dim
        self.cfg = cfg
        self.items = items
        self.n_items_x, self.n_items_y = items.n_items_x, items.n_items_y
        self.pos_seq = nnx.Param(normal(d**-0.5)(rngs.params(), (cfg.max_len, d)))
        self.encoder_x = SequenceEncoder(d, cfg.num_blocks, cfg.num_heads, cfg.dropout, rngs=rngs)
        self.encoder_y = SequenceEncoder(d, cfg.num_blocks, cfg.num_heads, cfg.dropout, rngs=rngs)
        self.scorer = DotScorer()

    def represent(self, seq: jax.Array, domain: str, key: Key) -> jax.Array:
        """``seq [B, W]`` (W <= max_len, left-padded with 0) -> ``h [B, d]``."""
        cfg = self.cfg
        width = seq.shape[1]
        if width > cfg.max_len:
            raise ValueError(f"batch width {width} exceeds model.max_len {cfg.max_len}")
        emb = self.items(seq, domain) * math.sqrt(cfg.dim) + self.pos_seq[...][cfg.max_len - width :][None]
        padding = seq > 0
        encoder = self.encoder_x if domain == "x" else self.encoder_y
        out = encoder(emb, padding, key)
        if cfg.sasrec_readout == "last":  # left padding: the last position is the most recent
            return jnp.where(padding[:, -1:], out[:, -1], 0.0)
        return masked_mean(out, padding)

    def score_items(self, h: jax.Array, item_ids: jax.Array, domain: Any) -> jax.Array:
        """As :meth:`imvae_jax.model.imvae.IMVAE.score_items`."""
        return self.scorer(h, self.items(item_ids, domain))

    def __call__(self, batch: Mapping[str, Any], key: Key = None) -> ModelOutputs:
        k_x, k_y = split_key(key, 2)
        h_x = self.represent(jnp.asarray(batch["seq_x"]), "x", k_x)
        h_y = self.represent(jnp.asarray(batch["seq_y"]), "y", k_y)
        target_domain = jnp.asarray(batch["target_domain"])
        h = jnp.where((target_domain == 0)[:, None], h_x, h_y)
        scores = self.score_items(h, jnp.asarray(batch["candidates"]), target_domain[:, None])
        return ModelOutputs(posteriors={}, priors={}, scores=scores, h_x=h_x, h_y=h_y, extras={})
