"""Deployments: the UI form gets a preset dropdown, the inbox a schedule, serving keeps it on shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoforge.presets import load_presets


def test_reconstruct_deployment_offers_the_presets(tmp_path: Path) -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.deployments import build
    from flows.reconstruct import reconstruct

    deployments = build(tmp_path / "ws", "preview", tmp_path / "inbox", "*/30 * * * *")
    by_name = {d.name: d for d in deployments}
    schema = parameter_schema(reconstruct).model_dump()  # what the deployment's UI form is built from
    preset = schema["properties"]["preset"]
    choices = preset.get("enum") or next(p["enum"] for p in preset.get("allOf", []) if "enum" in p)
    assert set(choices) == set(load_presets())
    assert by_name["reconstruct"].parameters["preset"] == "preview"
    assert {"capture", "overrides", "workspace", "until"} <= set(schema["properties"])
    inbox = by_name["process-inbox"]
    assert [s.schedule.cron for s in inbox.schedules] == ["*/30 * * * *"]
    assert inbox.parameters["inbox"] == str((tmp_path / "inbox").resolve())


def test_serving_never_pauses_the_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import deployments

    seen: dict = {}
    monkeypatch.setattr(deployments, "serve", lambda *items, **kwargs: seen.update(items=items, **kwargs))
    deployments.serve_deployments(tmp_path / "ws", "standard", tmp_path / "inbox", "0 * * * *")
    assert seen["pause_on_shutdown"] is False
    assert [d.name for d in seen["items"]] == ["reconstruct", "process-inbox"]
