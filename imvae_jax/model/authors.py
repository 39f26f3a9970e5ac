"""Load the authors' PyTorch weights (``state_dict`` names of spec 2.14) into the authors variant.

    params = load_authors_weights("imvae_seed0.npz", cfg, n_items_x=..., n_items_y=...,
                                  source_ids_x=meta["item_ids_x"], source_ids_y=meta["item_ids_y"])
    model = build_model(cfg, ..., seed=0); nnx.update(model, params)

The ``.npz`` holds one array per ``state_dict`` entry, as PyTorch stores it: ``Linear``
weights ``(out, in)``, ``Conv1d`` k=1 weights ``(out, in, 1)``, ``MultiheadAttention``
``in_proj_weight (3d, d)`` stacked q, k, v. A missing, unexpected or mis-shaped entry is an
error naming it. The joint table size ``N`` is read from the table (``2N`` rows) unless given.

Name map (code names: spec 2.6-2.11; the code's ``mu_t``, decoded for Y, is our ``z_t_x``):

==================================  =========================================
PyTorch                             ours
==================================  =========================================
``item_emb_layer.emb_item``         ``items.table``
``encode1`` / ``encode2``           ``encoder_x`` / ``encoder_y``
``q_layers`` / ``q_layers_d2``      ``post_x`` / ``post_y`` (also z_a: shared)
``qr_layers_trans`` / ``..._d2_..`` ``r_x`` / ``r_y``
``encode1_trans(_down)``            ``cross_t_x.attention`` / ``.head``
``encode2_trans(_down)``            ``cross_t_y.attention`` / ``.head``
``q_layers_trans`` / ``..._d2_..``  ``cross_t_x`` / ``cross_t_y`` (``cross_encoder='mlp'``)
``layernorm``                       ``cross_norm``
``p_layers`` / ``p_layers_d2``      ``head_x.dec_own`` / ``head_y.dec_own``
``p_layers_trans`` / ``..._d2_..``  ``head_y.dec_cross`` / ``head_x.dec_cross``
``down1`` / ``down2``               ``head_x.down`` / ``head_y.down``
``predictModule.fc.0`` / ``fc.2``   ``scorer.fc_in`` / ``scorer.fc_out``
``disc1`` / ``disc2``               ``disc_x`` / ``disc_y``
``prior_mu(2)``, ``prior_logvar(2)``  ``prior_{x,y}_mu``, ``prior_{x,y}_scale``
==================================  =========================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from imvae_jax.model.config import ModelConfig

Transform = Callable[[np.ndarray], np.ndarray]


def _linear_t(w: np.ndarray) -> np.ndarray:
    return w.T


def _conv_t(w: np.ndarray) -> np.ndarray:
    return w[:, :, 0].T


def _same(w: np.ndarray) -> np.ndarray:
    return w


def name_map(cfg: ModelConfig) -> dict[str, tuple[str, Transform]]:
    """Our dotted parameter path -> (PyTorch ``state_dict`` name, array transform)."""
    out: dict[str, tuple[str, Transform]] = {"items.table": ("item_emb_layer.emb_item.weight", _same)}

    def linear(ours: str, theirs: str) -> None:
        out[f"{ours}.kernel"] = (f"{theirs}.weight", _linear_t)
        out[f"{ours}.bias"] = (f"{theirs}.bias", _same)

    def norm(ours: str, theirs: str) -> None:
        out[f"{ours}.scale"] = (f"{theirs}.weight", _same)
        out[f"{ours}.bias"] = (f"{theirs}.bias", _same)

    def mha(ours: str, theirs: str) -> None:
        out[f"{ours}.in_kernel"] = (f"{theirs}.in_proj_weight", _linear_t)
        out[f"{ours}.in_bias"] = (f"{theirs}.in_proj_bias", _same)
        linear_out = f"{theirs}.out_proj"
        out[f"{ours}.out_kernel"] = (f"{linear_out}.weight", _linear_t)
        out[f"{ours}.out_bias"] = (f"{linear_out}.bias", _same)

    def mlp(ours: str, theirs: str, n: int = 2) -> None:
        for i in range(n):
            linear(f"{ours}.layers.{i}", f"{theirs}.{i}")

    for ours, theirs in (("encoder_x", "encode1"), ("encoder_y", "encode2")):
        for i in range(cfg.num_blocks):
            block = f"{ours}.blocks.{i}"
            norm(f"{block}.attention_norm", f"{theirs}.attention_layernorms.{i}")
            mha(f"{block}.attention", f"{theirs}.attention_layers.{i}")
            norm(f"{block}.ffn_norm", f"{theirs}.forward_layernorms.{i}")
            for ours_ffn, conv in (("ffn_in", "conv1"), ("ffn_out", "conv2")):
                out[f"{block}.{ours_ffn}.kernel"] = (f"{theirs}.forward_layers.{i}.{conv}.weight", _conv_t)
                out[f"{block}.{ours_ffn}.bias"] = (f"{theirs}.forward_layers.{i}.{conv}.bias", _same)
        norm(f"{ours}.last_norm", f"{theirs}.last_layernorm")
    mlp("post_x.mlp", "q_layers")
    mlp("post_y.mlp", "q_layers_d2")
    if cfg.use_cross_domain:
        mlp("r_x.mlp", "qr_layers_trans")
        mlp("r_y.mlp", "qr_layers_d2_trans")
        if cfg.cross_encoder == "attention":
            for ours, theirs in (("cross_t_x", "encode1_trans"), ("cross_t_y", "encode2_trans")):
                mha(f"{ours}.attention", theirs)
                linear(f"{ours}.head.layers.0", f"{theirs}_down")
            norm("cross_norm", "layernorm")
        else:
            mlp("cross_t_x.mlp", "q_layers_trans")
            mlp("cross_t_y.mlp", "q_layers_d2_trans")
        mlp("head_x.dec_cross", "p_layers_d2_trans")
        mlp("head_y.dec_cross", "p_layers_trans")
    mlp("head_x.dec_own", "p_layers")
    mlp("head_y.dec_own", "p_layers_d2")
    linear("head_x.down", "down1")
    linear("head_y.down", "down2")
    linear("scorer.fc_in", "predictModule.fc.0")
    linear("scorer.fc_out", "predictModule.fc.2")
    linear("disc_x", "disc1")
    linear("disc_y", "disc2")
    for ours, theirs in (("prior_x", ""), ("prior_y", "2")):
        out[f"{ours}_mu"] = (f"prior_mu{theirs}", _same)
        out[f"{ours}_scale"] = (f"prior_logvar{theirs}", _same)
    return out


def nested(flat: Mapping[tuple, object]) -> dict:
    """``{(a, b): v}`` -> ``{a: {b: v}}``."""
    out: dict = {}
    for path, value in flat.items():
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = value
    return out


def authors_state_to_params(
    arrays: Mapping[str, np.ndarray], params: nnx.State, cfg: ModelConfig, *, source: str = "state_dict"
) -> nnx.State:
    """Fill ``params`` (an ``nnx.Param`` state of an authors-variant model, concrete or
    abstract) in place from PyTorch-layout ``arrays``, and return it."""
    if cfg.variant != "authors":
        raise ValueError(f"authors weights load into variant='authors', not {cfg.variant!r}")
    names = name_map(cfg)
    flat = {".".join(map(str, path)): variable for path, variable in nnx.to_flat_state(params)}
    missing_ours = sorted(set(flat) - set(names))
    if missing_ours:
        raise ValueError(f"model parameters without a PyTorch name (config mismatch?): {missing_ours}")
    wanted = {theirs for theirs, _ in names.values()}
    missing = sorted(wanted - set(arrays))
    if missing:
        raise ValueError(f"{source}: missing state_dict entries {missing}")
    unexpected = sorted(set(arrays) - wanted)
    if unexpected:
        raise ValueError(f"{source}: unexpected state_dict entries {unexpected} (check the model config)")
    values: dict[tuple, jnp.ndarray] = {}
    for path, variable in nnx.to_flat_state(params):
        ours = ".".join(map(str, path))
        theirs, transform = names[ours]
        array = np.asarray(arrays[theirs], dtype=np.float32)
        value = np.ascontiguousarray(transform(array)) if array.ndim else array
        target = tuple(variable.get_value().shape)
        if value.shape != target:
            raise ValueError(
                f"{source}: {theirs} has shape {array.shape}, which gives {value.shape} for "
                f"{ours}; the model expects {target}"
            )
        values[path] = jnp.asarray(value)
    nnx.replace_by_pure_dict(params, nested(values))
    return params


def load_authors_weights(
    path: str | Path,
    cfg: ModelConfig,
    *,
    n_items_x: int,
    n_items_y: int,
    source_ids_x: Sequence | np.ndarray,
    source_ids_y: Sequence | np.ndarray,
    joint_size: int | None = None,
) -> nnx.State:
    """``nnx.Param`` state of the authors variant from an ``.npz`` of PyTorch ``state_dict``
    arrays (see the module docstring); apply it with ``nnx.update(model, state)``."""
    from imvae_jax.model.imvae import build_model

    path = Path(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    table = arrays.get("item_emb_layer.emb_item.weight")
    if table is None:
        raise ValueError(f"{path}: no 'item_emb_layer.emb_item.weight' (is this an IM-VAE state_dict?)")
    if joint_size is None:
        if table.shape[0] % 2:
            raise ValueError(f"{path}: item table has {table.shape[0]} rows, expected 2N")
        joint_size = table.shape[0] // 2
    abstract = nnx.eval_shape(
        lambda: build_model(
            cfg,
            n_items_x=n_items_x,
            n_items_y=n_items_y,
            seed=0,
            source_ids_x=source_ids_x,
            source_ids_y=source_ids_y,
            joint_size=joint_size,
        )
    )
    _, params, _ = nnx.split(abstract, nnx.Param, ...)
    return authors_state_to_params(arrays, params, cfg, source=str(path))
