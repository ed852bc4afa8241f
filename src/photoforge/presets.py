"""Presets from pipelines.yaml: a full, validated set of stage params per named preset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from photoforge.errors import ConfigError
from photoforge.stages.bake import BakeParams
from photoforge.stages.depth import DepthParams
from photoforge.stages.export import ExportParams
from photoforge.stages.fusion import FusionParams
from photoforge.stages.ingest import IngestParams
from photoforge.stages.mesh import MeshParams
from photoforge.stages.poses import PosesParams
from photoforge.stages.report import ReportParams
from photoforge.stages.splat import SplatParams
from photoforge.stages.turntable import TurntableParams
from photoforge.stages.uv import UVParams

PIPELINES_ENV = "PHOTOFORGE_PIPELINES"
_REPO_PIPELINES = Path(__file__).resolve().parents[2] / "pipelines.yaml"


class PipelineConfig(BaseModel):
    """Every stage's params, field for field the blocks of a preset."""

    model_config = ConfigDict(extra="forbid")

    ingest: IngestParams
    poses: PosesParams
    depth: DepthParams
    fusion: FusionParams
    splat: SplatParams
    mesh: MeshParams
    uv: UVParams
    bake: BakeParams
    export: ExportParams
    turntable: TurntableParams
    report: ReportParams


STAGE_ORDER: tuple[str, ...] = tuple(PipelineConfig.model_fields)


def pipelines_path() -> Path:
    """PHOTOFORGE_PIPELINES, else ./pipelines.yaml, else the one in the photoforge checkout."""
    env = os.environ.get(PIPELINES_ENV)
    if env:
        return Path(env)
    local = Path.cwd() / "pipelines.yaml"
    return local if local.is_file() else _REPO_PIPELINES


def load_presets(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or pipelines_path()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read presets: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    presets = data.get("presets") if isinstance(data, dict) else None
    if not isinstance(presets, dict) or not presets:
        raise ConfigError(f"{path}: expected a top-level 'presets:' mapping of named presets")
    return presets


def load_preset(name: str, overrides: dict[str, Any] | None = None, path: Path | None = None) -> PipelineConfig:
    """The named preset with `overrides` ({"stage.param": value}) applied, validated."""
    path = path or pipelines_path()
    presets = load_presets(path)
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r} in {path} (known: {', '.join(presets)})")
    raw = _deep_copy(presets[name])
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: preset {name!r} must be a mapping of stage blocks")
    for dotted, value in (overrides or {}).items():
        _apply_override(raw, dotted, value)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        where = f"{path}: preset {name!r}" + (" with --set overrides" if overrides else "")
        raise ConfigError(f"{where}: {format_validation_error(exc)}") from exc


def validate_all(path: Path | None = None) -> dict[str, PipelineConfig]:
    """Every preset of the file, validated (the CLI's `presets` and the tests use it)."""
    return {name: load_preset(name, path=path) for name in load_presets(path)}


def parse_override(text: str) -> tuple[str, Any]:
    """'stage.param=value' with the value read as YAML (numbers, booleans, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected STAGE.PARAM=VALUE")
    dotted, _, value_text = text.partition("=")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        value = value_text
    return dotted.strip(), value


def _apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {dotted}: expected STAGE.PARAM (e.g. poses.matcher)")
    stage, param = parts
    if stage not in PipelineConfig.model_fields:
        raise ConfigError(f"--set {dotted}: unknown stage {stage!r} (known: {', '.join(STAGE_ORDER)})")
    fields = PipelineConfig.model_fields[stage].annotation.model_fields  # type: ignore[union-attr]
    if param not in fields:
        raise ConfigError(
            f"--set {dotted}: unknown parameter {param!r} of stage {stage!r} (known: {', '.join(fields)})"
        )
    raw.setdefault(stage, {})[param] = value


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{loc}: {msg}{got}")
    return "; ".join(lines)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
