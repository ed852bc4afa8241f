"""Deployments: the UI form gets a preset dropdown, the inbox a schedule, serving keeps it on shutdown;
runs heartbeat, and one automation marks those whose process died Crashed."""

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
    assert seen["heartbeat_seconds"] == 30  # served runs are never silent long enough for the zombie automation
    assert [d.name for d in seen["items"]] == ["reconstruct", "process-inbox"]


def test_pool_runs_get_the_heartbeat_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """prefect.yaml, rendered as `prefect deploy` renders it, gives every pool's runs the heartbeat."""
    import yaml
    from prefect.settings.models.flows import FlowsSettings
    from prefect.utilities.templating import apply_values

    from flows.deployments import PREFECT_YAML, PoolSetup

    setup = PoolSetup(workspace=Path("ws"), inbox=Path("inbox"), heartbeat_s=45, crash_after_s=100)
    for name, value in setup.environment().items():
        monkeypatch.setenv(name, value)
    project = yaml.safe_load(PREFECT_YAML.read_text())
    for deployment in project["deployments"]:
        env = apply_values(deployment["work_pool"], {})["job_variables"]["env"]
        assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "45", deployment["name"]
        monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
        assert FlowsSettings().heartbeat_frequency == 45  # what the flow-run process reads


def test_deploy_makes_one_zombie_automation_for_photoforge_runs(prefect_api: None) -> None:
    from prefect.client.orchestration import get_client

    from flows.zombies import AUTOMATION_NAME, ensure_zombie_automation

    first = ensure_zombie_automation(heartbeat_s=30, crash_after_s=90)
    second = ensure_zombie_automation(heartbeat_s=40, crash_after_s=120)  # deploying again updates it
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(AUTOMATION_NAME)
    assert [a.id for a in found] == [first] and second == first
    trigger = found[0].trigger
    assert trigger.posture == "Proactive" and trigger.within.total_seconds() == 120
    assert trigger.after == {"prefect.flow-run.heartbeat"} and trigger.for_each == {"prefect.resource.id"}
    assert trigger.threshold == 1 and trigger.expect == {"prefect.flow-run.*"}  # any event of the run resets it
    assert set(trigger.match_related["prefect.resource.name"]) == {"reconstruct", "process-inbox", "gpu-stage"}
    (action,) = found[0].actions
    assert action.type == "change-flow-run-state" and action.state == "CRASHED"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--heartbeat-s", "10"], "--heartbeat-s 10: below Prefect's minimum; use 30 s or more"),
        (["--heartbeat-s", "60", "--crash-after-s", "90"], "--crash-after-s 90: live runs would be marked Crashed"),
    ],
)
def test_deploy_refuses_heartbeats_that_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    """One clear line, before any pool or deployment is made (the server here does not even exist)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import cli

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        code = cli.main(["deploy", "--inbox", str(tmp_path), "--workspace", str(tmp_path / "ws"), *args])
    output = capsys.readouterr()
    text = " ".join((output.out + output.err).split())
    assert code != 0 and f"error: [deploy] {fragment}" in text, text
    assert "Traceback" not in text and "does not answer" not in text
