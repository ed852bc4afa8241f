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
    @property
    def max_support_share(self) -> float: ...
    @property
    def max_scale_spread_percent(self) -> float: ...


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
    name: str,
    stage: str,
    value: float | None,
    ok: Callable[[float], bool],
    unmeasured: str,
    failed: str | Callable[[float], str] = "",
) -> dict[str, Any]:
    """A check of a number: not checked (with `unmeasured`) when the stage has none, else ok(value).

    `failed` says what to do when it fails: a text, or one made from the value.
    """
    if value is None:
        return check(name, stage, value, None, unmeasured)
    passed = bool(ok(value))
    return check(name, stage, value, passed, "" if passed else failed(value) if callable(failed) else failed)


def checks(r: dict[str, Any], p: Thresholds) -> list[dict[str, Any]]:
    """The verdict's checks on report.json's sections, each naming the stage to blame."""
    from photoforge.qa.baked_views import MIN_VIEW_COVERAGE

    poses, depth, mesh, texture, left_out = r["poses"], r["depth"], r["mesh"], r["texture"], r["left_out"]
    none = "the stage recorded no value"
    rows = [
        _measured("registered fraction", "poses", poses["registered_fraction"], lambda v: v >= p.min_registered, none),
        _measured("mean reprojection error (px)", "poses", poses["mean_reprojection_error_px"],
                  lambda v: v <= p.max_reprojection_px, none),
        *scale_checks(r.get("scale"), p),
        _measured("views with usable depth", "depth", depth["usable_fraction"], lambda v: v >= 0.8, none),
        *isolation_checks(r.get("asset"), mesh, p),
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


SUPPORT_NAMES = {"floor": "ground or table", "wall": "wall"}


def scale_checks(scale: dict[str, Any] | None, p: Thresholds) -> list[dict[str, Any]]:
    """Markers gave a scale: they agree on it. No scale asked for (SfM units) or an older run: no check."""
    if scale is None or scale["source"] != "markers":
        return []
    return [
        _measured("markers agree on the scale (%)", "scale", scale["spread_percent"],
                  lambda v: v <= p.max_scale_spread_percent, "the scale stage recorded no spread",
                  lambda v: f"the markers disagree by {v:.1f}%: check scale.marker_size and that the markers are "
                  "printed flat"),
    ]  # fmt: skip


def isolation_checks(asset: dict[str, Any] | None, mesh: dict[str, Any], p: Thresholds) -> list[dict[str, Any]]:
    """An object holds no more than a sliver of its support; a scene (or an older run) is not isolated: no check.

    With no support found there is no plane to measure the mesh against, so no row either.
    """
    if asset is None or asset["kind"] != "object" or asset["support"] is None:
        return []
    support = SUPPORT_NAMES.get(asset["support"], asset["support"])
    return [
        _measured("support left in the object (share of its surface)", "asset", mesh.get("support_area_share"),
                  lambda v: v <= p.max_support_share, "the mesh stage measured no support share",
                  lambda v: f"the asset still holds {v:.0%} of the {support}: add masks/ beside the photos or set "
                  "asset.crop"),
    ]  # fmt: skip
