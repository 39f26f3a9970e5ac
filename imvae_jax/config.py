"""Configs: typed frozen dataclasses, layered defaults -> YAML/JSON file -> ``a.b=c`` overrides.

Each section lives beside the code that reads it (``imvae_jax/<package>/config.py``) so the
package that owns a setting owns its default; this module composes them into :class:`Config`
and supplies the generic machinery (dict/YAML/JSON round trip, strict unknown-key errors,
dotted overrides). Every function here is pure: nothing is global.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from imvae_jax.data.config import DataConfig
from imvae_jax.eval.config import EvalConfig
from imvae_jax.losses.config import LossConfig
from imvae_jax.model.config import ModelConfig
from imvae_jax.psg.config import PSGConfig
from imvae_jax.train.config import TrainConfig

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that does not fit the schema."""


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole experiment: one section per stage of the pipeline."""

    data: DataConfig = DataConfig()
    psg: PSGConfig = PSGConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()


def to_dict(cfg: Any) -> dict[str, Any]:
    """A frozen dataclass (nested) as plain dicts/lists, JSON- and YAML-safe."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return convert(cfg)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a parsed YAML/JSON value to the annotated field type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:  # try the next member of the union
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} fits none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return type(value)(value) if origin is list else tuple(value)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build ``cls`` from a mapping; unknown keys are errors, missing keys take defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Apply ``section.key=value`` overrides (values parsed as YAML: ``1e-3``, ``[1,2]``, ``true``)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form a.b=c")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"override {item!r}: no section {'.'.join(parts[: i + 1])!r}")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
        node[parts[-1]] = _parse_scalar(raw)
    return from_dict(type(cfg), data)


def dumps(cfg: Any, fmt: str = "yaml") -> str:
    """The config as YAML (default) or JSON text."""
    data = to_dict(cfg)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False)


def save(cfg: Any, path: str | Path) -> None:
    """Write YAML or JSON, chosen by the file's suffix."""
    path = Path(path)
    fmt = "json" if path.suffix == ".json" else "yaml"
    path.write_text(dumps(cfg, fmt))


def load(path: str | Path, cls: type[T] = Config) -> T:  # type: ignore[assignment]
    """Read a YAML or JSON config file; unknown keys are errors naming the file."""
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def resolve(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then an optional file, then overrides."""
    cfg = load(path) if path else Config()
    return apply_overrides(cfg, list(overrides))
