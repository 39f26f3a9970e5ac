"""Authors variant: PyTorch-layout weights load, and eval-mode outputs match an independent
NumPy re-implementation of the authors' forward written from the spec (sections 1.4, 2)."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from flax import nnx

from imvae_jax.model import authors as authors_weights
from imvae_jax.model.config import ModelConfig
from imvae_jax.model.imvae import build_model, interleave

D, H, N = 16, 8, 40  # width, scorer hidden, authors' item_length
NX, NY, T, K = 12, 15, 6, 7
CFG = ModelConfig(variant="authors", dim=D, max_len=T, pseudo_len=T, scorer_hidden=H)


def source_ids(rng: np.random.Generator) -> tuple[list, list]:
    """Distinct source ids per domain, sharing three items across domains (as real files do)."""
    perm = rng.permutation(N)
    ids_x = perm[:NX]
    ids_y = np.concatenate([perm[NX : NX + NY - 3], ids_x[:3]])
    return [None, *ids_x.tolist()], [None, *ids_y.tolist()]


def torch_state_dict(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random weights with the names and PyTorch shapes of spec 2.14."""
    sd: dict[str, np.ndarray] = {}

    def w(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    def linear(name: str, fan_out: int, fan_in: int) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = w(fan_out, fan_in), w(fan_out, scale=0.1)

    def norm(name: str) -> None:
        sd[f"{name}.weight"], sd[f"{name}.bias"] = 1 + w(D, scale=0.1), w(D, scale=0.1)

    def mha(name: str) -> None:
        sd[f"{name}.in_proj_weight"], sd[f"{name}.in_proj_bias"] = w(3 * D, D), w(3 * D, scale=0.1)
        linear(f"{name}.out_proj", D, D)

    sd["item_emb_layer.emb_item.weight"] = w(2 * N, D, scale=1.0)
    for enc in ("encode1", "encode2"):
        for i in range(2):
            norm(f"{enc}.attention_layernorms.{i}")
            mha(f"{enc}.attention_layers.{i}")
            norm(f"{enc}.forward_layernorms.{i}")
            for conv in ("conv1", "conv2"):
                sd[f"{enc}.forward_layers.{i}.{conv}.weight"] = w(D, D, 1)
                sd[f"{enc}.forward_layers.{i}.{conv}.bias"] = w(D, scale=0.1)
        norm(f"{enc}.last_layernorm")
    for name in ("q_layers", "q_layers_d2", "qr_layers_trans", "qr_layers_d2_trans"):
        linear(f"{name}.0", 2 * D, D)
        linear(f"{name}.1", 2 * D, 2 * D)
    for name in ("p_layers", "p_layers_d2", "p_layers_trans", "p_layers_d2_trans"):
        linear(f"{name}.0", 2 * D, D)
        linear(f"{name}.1", D, 2 * D)
    for name in ("encode1_trans", "encode2_trans"):
        mha(name)
        linear(f"{name}_down", 2 * D, D)
    norm("layernorm")
    linear("down1", D, 3 * D)
    linear("down2", D, 3 * D)
    linear("predictModule.fc.0", H, 2 * D)
    linear("predictModule.fc.2", 1, H)
    linear("disc1", 1, 2 * D)
    linear("disc2", 1, 2 * D)
    sd["prior_mu"], sd["prior_logvar"] = np.float32(0.3), np.float32(1.0)  # frozen at the clamp
    sd["prior_mu2"], sd["prior_logvar2"] = np.float32(-0.2), np.float32(-0.7)
    return sd


# --------------------------------------------------------------- NumPy reference (spec 2)
def ln(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def torch_mha(query, key, value, sd, name, heads, blocked=None):
    """nn.MultiheadAttention on batch-first arrays; ``blocked`` [Lq, Lk] True = masked."""
    win, bin_ = sd[f"{name}.in_proj_weight"].astype(np.float64), sd[f"{name}.in_proj_bias"]
    q = query @ win[:D].T + bin_[:D]
    k = key @ win[D : 2 * D].T + bin_[D : 2 * D]
    v = value @ win[2 * D :].T + bin_[2 * D :]
    b, lq, lk, dh = q.shape[0], q.shape[1], k.shape[1], D // heads
    q = q.reshape(b, lq, heads, dh).transpose(0, 2, 1, 3) / np.sqrt(dh)
    k = k.reshape(b, lk, heads, dh).transpose(0, 2, 1, 3)
    v = v.reshape(b, lk, heads, dh).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2)
    if blocked is not None:
        s = np.where(blocked, -np.inf, s)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(b, lq, D)
    return o @ sd[f"{name}.out_proj.weight"].T + sd[f"{name}.out_proj.bias"]


def attention_encoder(x, sd, name):
    blocked = ~np.tril(np.ones((x.shape[1], x.shape[1]), bool))
    for i in range(2):
        q = ln(x, sd[f"{name}.attention_layernorms.{i}.weight"], sd[f"{name}.attention_layernorms.{i}.bias"], 1e-8)
        x = q + torch_mha(q, x, x, sd, f"{name}.attention_layers.{i}", 1, blocked)
        x = ln(x, sd[f"{name}.forward_layernorms.{i}.weight"], sd[f"{name}.forward_layernorms.{i}.bias"], 1e-8)
        conv = f"{name}.forward_layers.{i}"
        hidden = np.maximum(x @ sd[f"{conv}.conv1.weight"][:, :, 0].T + sd[f"{conv}.conv1.bias"], 0)
        x = x + hidden @ sd[f"{conv}.conv2.weight"][:, :, 0].T + sd[f"{conv}.conv2.bias"]
    return ln(x, sd[f"{name}.last_layernorm.weight"], sd[f"{name}.last_layernorm.bias"], 1e-8)


def sigma(s):
    return np.exp(0.1 + 0.9 * np.log1p(np.exp(np.minimum(s, 0.4))))


def encode(v, sd, name):
    u = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    g = np.tanh(u @ sd[f"{name}.0.weight"].T + sd[f"{name}.0.bias"])
    o = g @ sd[f"{name}.1.weight"].T + sd[f"{name}.1.bias"]
    return o[:, :D], o[:, D:]


def encode_t(k, q, v, sd, name):  # note the argument order of the authors' encode_t
    h = ln(torch_mha(q, k, v, sd, name, 4), sd["layernorm.weight"], sd["layernorm.bias"], 1e-5).mean(1)
    o = h @ sd[f"{name}_down.weight"].T + sd[f"{name}_down.bias"]
    return o[:, :D], o[:, D:]


def decode(z, sd, name):
    return np.tanh(z @ sd[f"{name}.0.weight"].T + sd[f"{name}.0.bias"]) @ sd[f"{name}.1.weight"].T + sd[f"{name}.1.bias"]


def score_logits(h, e, sd):
    x = np.concatenate([np.broadcast_to(h[:, None], e.shape[:2] + (D,)), e], -1)
    hidden = np.maximum(x @ sd["predictModule.fc.0.weight"].T + sd["predictModule.fc.0.bias"], 0)
    return (hidden @ sd["predictModule.fc.2.weight"].T + sd["predictModule.fc.2.bias"])[..., 0]


def reference_eval(sd, seq_d1, seq_d2, corr_seq_d1, corr_seq_d2, cands, domain_id, cs):
    """The authors' IMVAE forward with isTrain=False (spec 2.12 + 2.11), in float64."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    E = sd["item_emb_layer.emb_item.weight"]
    xs, ys = attention_encoder(E[seq_d1], sd, "encode1"), attention_encoder(E[seq_d2], sd, "encode2")
    xa, ya = attention_encoder(E[corr_seq_d1], sd, "encode1"), attention_encoder(E[corr_seq_d2], sd, "encode2")
    xm, ym, xam, yam = xs.mean(1), ys.mean(1), xa.mean(1), ya.mean(1)
    post = {
        "z_x": encode(xm, sd, "q_layers"),
        "z_a_x": encode(xam, sd, "q_layers"),
        "z_y": encode(ym, sd, "q_layers_d2"),
        "z_a_y": encode(yam, sd, "q_layers_d2"),
        "r_x": encode(xm, sd, "qr_layers_trans"),
        "r_y": encode(ym, sd, "qr_layers_d2_trans"),
        "z_t_x": encode_t(ys, xs, xs, sd, "encode1_trans"),  # mu_t: query X, key Y, value X
        "z_t_y": encode_t(xs, ys, ys, sd, "encode2_trans"),  # mu2_t: query Y, key X, value Y
    }
    mu = {k: v[0] for k, v in post.items()}
    rec_x = decode(mu["z_x"], sd, "p_layers")
    rec_x_aug = decode(mu["z_x"], sd, "p_layers")  # model.py:286
    rec_y = decode(mu["z_y"], sd, "p_layers_d2")
    rec_y_aug = decode(mu["z_a_y"], sd, "p_layers_d2")

    def down(name, parts):
        return np.concatenate(parts, -1) @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    h_x_o = down("down1", [rec_x, decode(mu["z_t_y"], sd, "p_layers_d2_trans"), rec_x_aug])
    h_y_o = down("down2", [rec_y, decode(mu["z_t_x"], sd, "p_layers_trans"), rec_y_aug])
    h_x_cs = down("down1", [rec_x, decode(mu["r_y"], sd, "p_layers_d2_trans"), rec_x_aug])
    h_y_cs = down("down2", [rec_y, decode(mu["r_x"], sd, "p_layers_trans"), rec_y_aug])
    e = E[cands]
    pred_x = np.where(cs[:, None], score_logits(h_x_cs, e, sd), score_logits(h_x_o, e, sd))
    pred_y = np.where(cs[:, None], score_logits(h_y_cs, e, sd), score_logits(h_y_o, e, sd))
    scores = np.where(domain_id[:, None] == 0, pred_x, pred_y)
    disc_x = np.concatenate([xam, rec_x_aug], -1) @ sd["disc1.weight"].T + sd["disc1.bias"]
    disc_y = np.concatenate([yam, rec_y_aug], -1) @ sd["disc2.weight"].T + sd["disc2.bias"]
    return post, scores, disc_x[:, 0], disc_y[:, 0]


def make_batch(rng: np.random.Generator, batch: int = 6) -> dict[str, np.ndarray]:
    seq_x = rng.integers(1, NX + 1, (batch, T)).astype(np.int32)
    seq_y = rng.integers(1, NY + 1, (batch, T)).astype(np.int32)
    seq_x[0, :4] = 0  # short history
    seq_y[1, :] = 0  # no Y history
    seq_x[2, :] = 0  # cold-start in X
    seq_y[3, :] = 0  # cold-start in Y
    target = np.array([0, 1, 0, 1, 0, 1], np.int32)[:batch]
    pseudo_x = rng.integers(1, NX + 1, (batch, T)).astype(np.int32)
    pseudo_x[4, 3:] = 0  # fewer recalled items
    return {
        "seq_x": seq_x,
        "seq_y": seq_y,
        "pseudo_x": pseudo_x,
        "pseudo_y": rng.integers(1, NY + 1, (batch, T)).astype(np.int32),
        "target_domain": target,
        "candidates": np.where(
            target[:, None] == 0, rng.integers(1, NX + 1, (batch, K)), rng.integers(1, NY + 1, (batch, K))
        ).astype(np.int32),
        "cold_start": np.array([False, False, True, True, False, False])[:batch],
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rng = np.random.default_rng(7)
    ids_x, ids_y = source_ids(rng)
    sd = torch_state_dict(rng)
    path = tmp_path_factory.mktemp("authors") / "weights.npz"
    np.savez(path, **sd)
    params = authors_weights.load_authors_weights(
        path, CFG, n_items_x=NX, n_items_y=NY, source_ids_x=ids_x, source_ids_y=ids_y
    )
    model = build_model(CFG, n_items_x=NX, n_items_y=NY, seed=3, source_ids_x=ids_x, source_ids_y=ids_y, joint_size=N)
    nnx.update(model, params)
    return model, sd, ids_x, ids_y, make_batch(rng)


def to_joint(ids: np.ndarray, source: list) -> np.ndarray:
    table = np.array([N] + source[1:])
    return table[ids]


def test_interleave_is_authors_layout():
    hist = np.array([[0, 0, 5]])
    pseudo = np.array([[7, 8]])
    np.testing.assert_array_equal(interleave(jnp.asarray(hist), jnp.asarray(pseudo)), [[0, 7, 0, 8, 5, 0]])


def test_parity_with_numpy_reference(setup):
    model, sd, ids_x, ids_y, batch = setup
    seq_d1, seq_d2 = to_joint(batch["seq_x"], ids_x), to_joint(batch["seq_y"], ids_y)
    corr_d1, corr_d2 = to_joint(batch["pseudo_x"], ids_x), to_joint(batch["pseudo_y"], ids_y)

    def inter(h, p):  # dataset.py:302-307, written again here
        out = np.empty((h.shape[0], 2 * h.shape[1]), h.dtype)
        out[:, 0::2], out[:, 1::2] = h, p
        return out

    cands = np.array(
        [to_joint(c, ids_x if d == 0 else ids_y) for c, d in zip(batch["candidates"], batch["target_domain"])]
    )
    post, scores, disc_x, disc_y = reference_eval(
        sd, seq_d1, seq_d2, inter(seq_d1, corr_d1), inter(seq_d2, corr_d2), cands, batch["target_domain"], batch["cold_start"]
    )
    out = jax.jit(lambda b: model(b, None))(batch)
    np.testing.assert_allclose(out.scores, scores, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(out.extras["disc_x"], disc_x, rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(out.extras["disc_y"], disc_y, rtol=1e-5, atol=2e-5)
    for name, (mu, s) in post.items():
        np.testing.assert_allclose(out.posteriors[name].mu, mu, rtol=1e-5, atol=2e-5, err_msg=name)
        np.testing.assert_allclose(out.posteriors[name].log_sigma, np.log(sigma(s)), rtol=1e-5, atol=2e-5, err_msg=name)
    # priors: N(prior_mu, sigma(prior_logvar)^2) per domain, N(0, sigma(1)^2) for z_t (spec 2.10)
    for name, mu, s in (("z_x", 0.3, 1.0), ("z_a_x", 0.3, 1.0), ("z_y", -0.2, -0.7), ("z_t_x", 0.0, 1.0), ("z_t_y", 0.0, 1.0)):
        prior = out.priors[name]
        np.testing.assert_allclose(np.broadcast_to(prior.mu, (1, D)), mu, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(np.broadcast_to(prior.log_sigma, (1, D)), np.log(sigma(s)), rtol=1e-6, err_msg=name)
    assert np.exp(float(out.priors["z_t_x"].log_sigma[0, 0])) == pytest.approx(2.5135944, abs=1e-6)


def test_cold_start_substitution_only_in_evaluation(setup):
    model, _, _, _, batch = setup
    warm = dict(batch, cold_start=np.zeros_like(batch["cold_start"]))
    cold_out, warm_out = model(batch, None), model(warm, None)
    cs = batch["cold_start"]
    assert not np.allclose(cold_out.scores[cs], warm_out.scores[cs])
    np.testing.assert_allclose(cold_out.scores[~cs], warm_out.scores[~cs], rtol=1e-6)
    # training mode: no substitution, so the flag changes nothing for the same key
    key = jax.random.key(0)
    np.testing.assert_allclose(model(batch, key).scores, model(warm, key).scores, rtol=1e-6)


def test_frozen_prior_scale_has_zero_gradient(setup):
    model, *_ = setup
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def total_prior(p):
        priors = nnx.merge(graphdef, p, rest).priors()
        return sum(jnp.sum(g.log_sigma) + jnp.sum(g.mu) for g in priors.values())

    grads = jax.grad(total_prior)(params)
    assert float(grads["prior_x_scale"][...]) == 0.0  # logvar = 1.0 > 0.4: clamped
    assert float(grads["prior_y_scale"][...]) != 0.0  # -0.7 < 0.4: trains
    assert float(grads["prior_x_mu"][...]) != 0.0


def test_load_errors_name_the_entry(tmp_path):
    rng = np.random.default_rng(0)
    ids_x, ids_y = source_ids(rng)
    sd = torch_state_dict(rng)
    kwargs = dict(n_items_x=NX, n_items_y=NY, source_ids_x=ids_x, source_ids_y=ids_y)
    bad = dict(sd)
    del bad["disc2.bias"]
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ValueError, match=r"missing\.npz: missing state_dict entries \['disc2.bias'\]"):
        authors_weights.load_authors_weights(tmp_path / "missing.npz", CFG, **kwargs)
    bad = dict(sd, **{"down1.weight": sd["down1.weight"].T})
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="down1.weight has shape"):
        authors_weights.load_authors_weights(tmp_path / "shape.npz", CFG, **kwargs)
    with pytest.raises(ValueError, match=r"source_ids_x\[2\]"):
        build_model(CFG, n_items_x=NX, n_items_y=NY, seed=0, source_ids_x=[None, 1, N + 5] + ids_x[3:], source_ids_y=ids_y, joint_size=N)
