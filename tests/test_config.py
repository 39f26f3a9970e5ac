"""Config machinery: round trips, strict keys, typed overrides."""

from __future__ import annotations

import dataclasses

import pytest

from imvae_jax import config as C


def test_defaults_round_trip_yaml_and_json(tmp_path):
    cfg = C.apply_overrides(C.Config(), ["model.dim=64", "data.split=[0.7, 0.2, 0.1]", "loss.lambda_t=2e-3"])
    for name in ("cfg.yaml", "cfg.json"):
        C.save(cfg, tmp_path / name)
        assert C.load(tmp_path / name) == cfg
    assert cfg.model.dim == 64
    assert cfg.data.split == (0.7, 0.2, 0.1)
    assert cfg.loss.lambda_t == pytest.approx(0.002)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        C.Config().model.dim = 3  # type: ignore[misc]


def test_unknown_keys_and_bad_types_are_errors(tmp_path):
    with pytest.raises(C.ConfigError, match="unknown key"):
        C.apply_overrides(C.Config(), ["model.dimm=3"])
    with pytest.raises(C.ConfigError, match="no section"):
        C.apply_overrides(C.Config(), ["modle.dim=3"])
    with pytest.raises(C.ConfigError, match="expected an integer"):
        C.apply_overrides(C.Config(), ["model.dim=abc"])
    with pytest.raises(C.ConfigError, match="not one of"):
        C.apply_overrides(C.Config(), ["model.variant=resnet"])
    with pytest.raises(C.ConfigError, match="a.b=c"):
        C.apply_overrides(C.Config(), ["model.dim"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  dim: 8\n  heads: 2\n")
    with pytest.raises(C.ConfigError, match=str(bad)):
        C.load(bad)


def test_integer_valued_float_and_file_then_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\nmodel:\n  dim: 32.0\n")
    cfg = C.resolve(path, ["train.epochs=5"])
    assert cfg.train.epochs == 5 and cfg.model.dim == 32 and isinstance(cfg.model.dim, int)
