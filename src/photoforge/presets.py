"""Presets: the stage params' code defaults are `standard`; pipelines.yaml lists what the others change.

A preset resolves as: the code defaults <- the presets it extends (`extends: NAME`, `standard` when
not given) <- its own values <- `--set` overrides (dotted, any depth: `poses.matcher`,
`splat.lr.means`), deep-merged, then validated. The built-in presets come from the checkout's
pipelines.yaml; a user file (PHOTOFORGE_PIPELINES, else ./pipelines.yaml) adds presets beside them
(one of the same name replaces the built-in one) and may extend built-in ones. The resolved params
are what runs and what is hashed into cache keys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from photoforge.errors import ConfigError
from photoforge.geometry.detail_levels import DetailLevel, detail_levels
from photoforge.layout import STAGE_ORDER
from photoforge.stages.asset import AssetParams
from photoforge.stages.bake import BakeParams
from photoforge.stages.depth import DepthParams
from photoforge.stages.export import ExportParams
from photoforge.stages.fusion import FusionParams
from photoforge.stages.ingest import IngestParams
from photoforge.stages.mesh import MeshParams
from photoforge.stages.poses import PosesParams
from photoforge.stages.report import ReportParams
from photoforge.stages.scale import ScaleParams
from photoforge.stages.splat import SplatParams
from photoforge.stages.turntable import TurntableParams
from photoforge.stages.uv import UVParams

__all__ = [
    "BASE_PRESET",
    "STAGE_ORDER",
    "ParamRow",
    "PipelineConfig",
    "describe",
    "flat_params",
    "load_preset",
    "load_presets",
    "parse_override",
    "pipelines_files",
    "pipelines_path",
    "preset_chain",
    "validate_all",
]

PIPELINES_ENV = "PHOTOFORGE_PIPELINES"
BUILTIN_PIPELINES = Path(__file__).resolve().parents[2] / "pipelines.yaml"
BASE_PRESET = "standard"  # the code defaults; what a preset extends unless it says otherwise
EXTENDS = "extends"


class PipelineConfig(BaseModel):
    """Every stage's params; built with no arguments it is the `standard` preset (the code defaults)."""

    model_config = ConfigDict(extra="forbid")

    ingest: IngestParams = Field(default_factory=IngestParams)
    poses: PosesParams = Field(default_factory=PosesParams)
    scale: ScaleParams = Field(default_factory=ScaleParams)
    depth: DepthParams = Field(default_factory=DepthParams)
    fusion: FusionParams = Field(default_factory=FusionParams)
    asset: AssetParams = Field(default_factory=AssetParams)
    splat: SplatParams = Field(default_factory=SplatParams)
    mesh: MeshParams = Field(default_factory=MeshParams)
    uv: UVParams = Field(default_factory=UVParams)
    bake: BakeParams = Field(default_factory=BakeParams)
    export: ExportParams = Field(default_factory=ExportParams)
    turntable: TurntableParams = Field(default_factory=TurntableParams)
    report: ReportParams = Field(default_factory=ReportParams)

    def detail_levels(self) -> list[DetailLevel]:
        """asset.glb's level, then each LOD's: one uv and one bake each (export.detail, export.lods)."""
        return detail_levels(
            detail=self.export.detail, faces=self.export.faces, lods=self.export.lods, texture_size=self.uv.texture_size
        )


if tuple(PipelineConfig.model_fields) != STAGE_ORDER:  # a stage added in one place only
    raise RuntimeError(f"PipelineConfig's fields {tuple(PipelineConfig.model_fields)} != layout.STAGE_ORDER")


@dataclass(frozen=True)
class _Preset:
    values: dict[str, Any]  # the stage blocks as written, without `extends`
    extends: str | None  # None: the code defaults
    source: Path


def pipelines_path() -> Path:
    """The user's presets: PHOTOFORGE_PIPELINES, else ./pipelines.yaml, else the built-in file."""
    env = os.environ.get(PIPELINES_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / "pipelines.yaml"
    return local if local.is_file() else BUILTIN_PIPELINES


def pipelines_files(path: Path | None = None) -> list[Path]:
    """The files presets are read from: the built-in one, then the user's (`path`) if another."""
    user = path or pipelines_path()
    files = [BUILTIN_PIPELINES] if BUILTIN_PIPELINES.is_file() else []
    if not files or user.resolve() != BUILTIN_PIPELINES.resolve():
        files.append(user)
    return files


def _read(path: Path) -> dict[str, _Preset]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read presets: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    raw = data.get("presets") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a top-level 'presets:' mapping of named presets")
    presets = {}
    for name, block in raw.items():
        block = {} if block is None else block
        if not isinstance(block, dict):
            raise ConfigError(f"{path}: preset {name!r} must be a mapping of stage blocks")
        values = {k: v for k, v in block.items() if k != EXTENDS}
        extends = block.get(EXTENDS, None if name == BASE_PRESET else BASE_PRESET)
        if extends is not None and not isinstance(extends, str):
            raise ConfigError(f"{path}: preset {name!r}: '{EXTENDS}' must name a preset (got {extends!r})")
        presets[str(name)] = _Preset(values, extends, path)
    return presets


def _presets(path: Path | None = None) -> dict[str, _Preset]:
    presets = {BASE_PRESET: _Preset({}, None, BUILTIN_PIPELINES)}
    for file in pipelines_files(path):
        presets.update(_read(file))
    return presets


def load_presets(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every preset's own values as written (built-in, then the user's), `extends` included when given."""
    return {
        name: ({EXTENDS: p.extends} if p.extends not in (None, BASE_PRESET) else {}) | p.values
        for name, p in _presets(path).items()
    }


def preset_chain(name: str, path: Path | None = None) -> list[str]:
    """`name`, the preset it extends, and so on up to the one on the code defaults."""
    return _chain(name, _presets(path))


def _chain(name: str, presets: dict[str, _Preset]) -> list[str]:
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        if current in chain:
            raise ConfigError(f"presets extend each other in a cycle: {' -> '.join([*chain, current])}")
        if current not in presets:
            by = f" (extended by {chain[-1]!r} in {presets[chain[-1]].source})" if chain else ""
            raise ConfigError(f"unknown preset {current!r}{by} (known: {', '.join(presets)})")
        chain.append(current)
        current = presets[current].extends
    return chain


def load_preset(name: str, overrides: dict[str, Any] | None = None, path: Path | None = None) -> PipelineConfig:
    """The named preset resolved along its `extends` chain, `overrides` ({"stage.param": value}) applied."""
    presets = _presets(path)
    chain = _chain(name, presets)
    raw: dict[str, Any] = {}
    cfg = PipelineConfig()
    for link in reversed(chain):  # validated link by link: an error names the preset that has it
        _deep_merge(raw, _deep_copy(presets[link].values))
        where = f"{presets[link].source}: preset {link!r}" + (f" (which {name!r} extends)" if link != name else "")
        cfg = _validate(raw, where)
    if overrides:
        for dotted, value in overrides.items():
            _deep_merge(raw, _override_tree(dotted, value))
        cfg = _validate(raw, f"{presets[name].source}: preset {name!r} with --set overrides")
    return cfg


def validate_all(path: Path | None = None) -> dict[str, PipelineConfig]:
    """Every preset, resolved and validated (the CLI's `presets` and the tests use it)."""
    return {name: load_preset(name, path=path) for name in _presets(path)}


def parse_override(text: str) -> tuple[str, Any]:
    """'stage.param=value' (or 'stage.group.param=value') with the value read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected STAGE.PARAM=VALUE")
    dotted, _, value_text = text.partition("=")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        value = value_text
    return dotted.strip(), value


def _override_tree(dotted: str, value: Any) -> dict[str, Any]:
    """{"splat.lr.means": v} as {"splat": {"lr": {"means": v}}}, every name checked against the params."""
    parts = dotted.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {dotted}: expected STAGE.PARAM (e.g. poses.matcher, splat.lr.means)")
    stage, *names = parts
    if stage not in PipelineConfig.model_fields:
        raise ConfigError(f"--set {dotted}: unknown stage {stage!r} (known: {', '.join(STAGE_ORDER)})")
    model: type[BaseModel] | None = _group(PipelineConfig.model_fields[stage].annotation)
    where = f"stage {stage!r}"
    for i, name in enumerate(names):
        if model is None:
            raise ConfigError(f"--set {dotted}: {where} is a value, it has no parameter {name!r}")
        if name not in model.model_fields:
            known = ", ".join(model.model_fields)
            raise ConfigError(f"--set {dotted}: unknown parameter {name!r} of {where} (known: {known})")
        model = _group(model.model_fields[name].annotation)
        where = f"{'group' if model else 'parameter'} {'.'.join(parts[: i + 2])!r}"
    tree: Any = value
    for part in reversed(parts):
        tree = {part: tree}
    return tree


def _group(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _validate(raw: dict[str, Any], where: str) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {format_validation_error(exc)}") from exc


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{loc}: {msg}{got}")
    return "; ".join(lines)


@dataclass(frozen=True)
class ParamRow:
    name: str  # dotted: stage.param or stage.group.param
    value: Any  # as JSON
    description: str
    changed: bool  # differs from the base it is compared with


def flat_params(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every leaf param as {"stage.param": JSON value}, nested groups dotted ("splat.lr.means")."""
    return {name: value for name, value, _ in _rows(model, model.model_dump(mode="json"), prefix)}


def describe(cfg: PipelineConfig, base: PipelineConfig | None = None) -> list[ParamRow]:
    """Every param of `cfg` in stage order with its meaning, marked where it differs from `base`."""
    against = flat_params(base if base is not None else PipelineConfig())
    return [
        ParamRow(name, value, description, against.get(name) != value)
        for name, value, description in _rows(cfg, cfg.model_dump(mode="json"), "")
    ]


def _rows(model: BaseModel, dumped: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any, str]]:
    for field, info in type(model).model_fields.items():
        value = getattr(model, field)
        if isinstance(value, BaseModel):
            yield from _rows(value, dumped[field], f"{prefix}{field}.")
        else:
            yield f"{prefix}{field}", dumped[field], info.description or ""


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
