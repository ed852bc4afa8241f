"""The report's verdict: checks on report.json's sections, each naming the stage to blame when it fails.

A check with nothing to measure (no left-out view, the glTF-Validator not run) is "not checked",
with why: a verdict never passes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

PASSED, FAILED, NOT_CHECKED = "passed", "failed", "not checked"


class Thresholds(Protocol):
    """What a check passes at (the report stage's params)."""

    @property
    def min_registered(self) -> float: ...
    @property
    def max_reprojection_px(self) -> float: ...
    @property
    def min_psnr_left_out(self) -> float: ...
    @property
    def min_coverage(self) -> float: ...


def verdict(rows: list[dict[str, Any]]) -> str:
    """One line: "Good asset" only when every check ran and passed."""
    failed = [c for c in rows if c["status"] == FAILED]
    unchecked = [c for c in rows if c["status"] == NOT_CHECKED]
    not_checked = f"{len(unchecked)} not checked: " + "; ".join(f"{c['name']} ({c['reason']})" for c in unchecked)
    if failed:
        line = f"{len(failed)} check(s) failed: start with stage {failed[0]['stage']}."
        return f"{line} {not_checked}." if unchecked else line
    if unchecked:
        return f"No check failed; {not_checked}."
    return "Good asset: every check passed."


def check(name: str, stage: str, value: Any, passed: bool | None, reason: str = "") -> dict[str, Any]:
    """A check's row: status passed, failed or (passed None) not checked; `passed` is true only when it passed."""
    status = NOT_CHECKED if passed is None else (PASSED if passed else FAILED)
    return {"name": name, "stage": stage, "value": value, "status": status, "passed": status == PASSED,
            "reason": reason}  # fmt: skip


def _measured(
    name: str, stage: str, value: float | None, ok: Callable[[float], bool], unmeasured: str, failed: str = ""
) -> dict[str, Any]:
    """A check of a number: not checked (with `unmeasured`) when the stage has none, else ok(value)."""
    if value is None:
        return check(name, stage, value, None, unmeasured)
    passed = bool(ok(value))
    return check(name, stage, value, passed, "" if passed else failed)


def checks(r: dict[str, Any], p: Thresholds) -> list[dict[str, Any]]:
    """The verdict's checks on report.json's sections, each naming the stage to blame."""
    from photoforge.qa.baked_views import MIN_VIEW_COVERAGE

    poses, depth, mesh, texture, left_out = r["poses"], r["depth"], r["mesh"], r["texture"], r["left_out"]
    none = "the stage recorded no value"
    rows = [
        _measured("registered fraction", "poses", poses["registered_fraction"], lambda v: v >= p.min_registered, none),
        _measured("mean reprojection error (px)", "poses", poses["mean_reprojection_error_px"],
                  lambda v: v <= p.max_reprojection_px, none),
        _measured("views with usable depth", "depth", depth["usable_fraction"], lambda v: v >= 0.8, none),
        check("mesh is manifold", "mesh", mesh["manifold"], bool(mesh["manifold"])),
    ]  # fmt: skip
    if mesh.get("watertight_requested"):
        rows.append(
            check("watertight as asked", "mesh", mesh["watertight"], bool(mesh["watertight"]),
                  "" if mesh["watertight"] else f"mesh.watertight is true but {mesh['boundary_edges']} boundary "
                  "edges are left: holes the clean-up could not close")
        )  # fmt: skip
    unscored = "no left-out view could be scored (bake.leave_out_every is 0, or fewer than 3 views)"
    uncovered = left_out.get("left_out_uncovered") or []
    validator = texture["gltf_validator_errors"]
    rows += [
        check("texture coverage", "bake", texture["coverage"], (texture["coverage"] or 0) >= p.min_coverage),
        _measured("left-out PSNR (dB)", "bake", left_out.get("psnr_left_out"), lambda v: v >= p.min_psnr_left_out,
                  unscored),
        _measured("left-out views covered by the mesh", "mesh", left_out.get("left_out_min_coverage"),
                  lambda v: not uncovered, unscored,
                  f"the mesh covers under {MIN_VIEW_COVERAGE:.0%} of what {', '.join(uncovered)} saw"),
        _measured("glTF-Validator errors", "export", validator, lambda v: v == 0,
                  f"validator not run: {texture.get('gltf_validator_not_run', 'no result')}"),
    ]  # fmt: skip
    return rows
