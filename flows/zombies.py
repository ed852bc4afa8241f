"""Flow runs whose process died (a killed worker, a lost machine) end Crashed, not Running forever.

Prefect's own mechanism (https://docs.prefect.io/v3/advanced/detect-zombie-flows): every flow-run
process emits a `prefect.flow-run.heartbeat` event every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds
(prefect.yaml sets it for the pools' runs), and a proactive automation on the server marks a run
Crashed when, after a heartbeat, nothing more is heard of it within `crash_after_s`. The server's
triggers and actions services run in `prefect server start` by default and evaluate proactive
triggers every 5 s (PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from photoforge.errors import PhotoforgeError

if TYPE_CHECKING:
    from prefect.automations import AutomationCore

AUTOMATION_NAME = "photoforge: crash runs without heartbeats"
MIN_HEARTBEAT_S = 30  # Prefect's floor for PREFECT_FLOWS_HEARTBEAT_FREQUENCY (a lower value fails its validation)


def check_timing(*, heartbeat_s: int, crash_after_s: int) -> None:
    """Refuse settings that Prefect rejects, or that would crash live runs after one late heartbeat."""
    if heartbeat_s < MIN_HEARTBEAT_S:
        raise PhotoforgeError(
            f"[deploy] --heartbeat-s {heartbeat_s}: below Prefect's minimum; use {MIN_HEARTBEAT_S} s or more"
        )
    if crash_after_s < 2 * heartbeat_s:
        raise PhotoforgeError(
            f"[deploy] --crash-after-s {crash_after_s}: live runs would be marked Crashed after one late heartbeat; "
            f"use at least twice --heartbeat-s ({2 * heartbeat_s} s)"
        )


def flow_names() -> list[str]:
    """The photoforge flows the automation watches (other flows on a shared server keep their own rules)."""
    from flows.batch import process_inbox
    from flows.gpu import gpu_stage
    from flows.reconstruct import reconstruct

    return sorted({reconstruct.name, process_inbox.name, gpu_stage.name})


def zombie_automation(*, heartbeat_s: int, crash_after_s: int) -> AutomationCore:
    """Prefect's documented zombie-run automation, limited to photoforge's flows."""
    from prefect.automations import AutomationCore
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    check_timing(heartbeat_s=heartbeat_s, crash_after_s=crash_after_s)
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            f"photoforge deploy: a {', '.join(flow_names())} run heartbeats every {heartbeat_s} s; "
            f"one not heard of for {crash_after_s} s lost its process and is marked Crashed."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            # any event of the run (heartbeat or state change, custom state names included) resets the clock
            expect={"prefect.flow-run.*"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": flow_names()}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crash_after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {crash_after_s} s: its process or machine is gone (photoforge)",
            )
        ],
    )


def ensure_zombie_automation(*, heartbeat_s: int, crash_after_s: int) -> UUID:
    """Create the automation, or update the one of that name: deploying twice leaves one."""
    from prefect.client.orchestration import get_client

    automation = zombie_automation(heartbeat_s=heartbeat_s, crash_after_s=crash_after_s)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if not existing:
            return client.create_automation(automation)
        keep, *duplicates = existing
        client.update_automation(keep.id, automation)
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        return keep.id
