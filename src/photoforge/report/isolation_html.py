"""The report's scale and isolation sections: what the scale and asset stages decided, and why.

A person should see, without opening a file, whether the asset is in metres (and if not, how to
get them), whether it is an object or a scene, and what was cut away from the fused cloud.
"""

from __future__ import annotations

import html
from typing import Any

from photoforge.layout import MARKERS_YAML
from photoforge.report.markup import fmt, table

MARKERS_HOWTO = (
    "The asset is in SfM units: right in shape, its size off by one unknown factor. For metres, print "
    "ArUco markers from the <b>4x4_50</b> dictionary, lay them flat around the object so the photos see "
    "them, and run with <code>--set scale.marker_size=0.05</code> (their printed side in metres, black "
    f"border included), or put a <code>{MARKERS_YAML}</code> holding <code>size: 0.05</code> beside the photos."
)
REASONS = {
    "outside_region": "outside the region the cameras look at",
    "support": "on or behind the support plane",
    "floaters": "floaters (not connected to the object)",
}
SUPPORTS = {"floor": "floor or table (the object stands on it)", "wall": "wall (the object hangs on it)"}


def scale_section(scale: dict[str, Any]) -> str:
    """The scale's source and residual; with no scale, how to get one."""
    rows = [
        ("units", scale["units"]),
        ("source", scale["source"]),
        ("markers found", scale["markers_found"]),
        ("views with markers", scale["views_with_markers"]),
        ("marker size (m)", scale["marker_size_m"]),
        ("dictionary", scale["dictionary"]),
        ("metres per SfM unit", scale["metres_per_unit"]),
        ("markers' spread (%)", scale["spread_percent"]),
    ]
    howto = f"<p class='hint'>{MARKERS_HOWTO}</p>" if scale["units"] == "sfm" else ""
    return howto + table(rows)


def asset_section(asset: dict[str, Any]) -> str:
    """Object or scene and the evidence; for an object, the support and the points removed by reason."""
    decided = (
        f"<p>Decided: <b>{html.escape(asset['kind'])}</b> (asked: {html.escape(asset['kind_requested'])}"
        f"{': from the cameras' if asset['kind_requested'] == 'auto' else ''}).</p>"
    )
    evidence = "<h3>Evidence</h3>" + table(sorted(asset["kind_evidence"].items())) if asset["kind_evidence"] else ""
    if asset["kind"] != "object":
        return decided + "<p>A scene: the fused cloud is kept whole, nothing isolated.</p>" + evidence
    points_in = max(int(asset["points_in"]), 1)
    removed = [
        (REASONS.get(reason, reason), f"{count} points ({100 * count / points_in:.1f}% of the fused cloud)")
        for reason, count in asset["removed"].items()
    ]
    removed.append(("in all", f"{sum(asset['removed'].values())} points ({fmt(asset['removed_percent'])}%)"))
    crop = "none" if asset["crop"] is None else f"{fmt(asset['crop'])} ({asset['crop_source']})"
    rows = [
        ("support found", SUPPORTS.get(asset["support"] or "", "none")),
        ("points kept", f"{asset['points_kept']} of {asset['points_in']}"),
        ("crop box (asset frame)", crop),
        ("units", asset["units"]),
    ]
    return decided + _no_support(asset) + table(rows) + "<h3>Removed</h3>" + table(removed) + evidence


def _no_support(asset: dict[str, Any]) -> str:
    """An object with no support plane found: the ground may still be in it, and the picture shows whether."""
    if asset["support"] is not None:
        return ""
    return (
        "<p class='hint'>No floor, table or wall was found under or behind the object. If the picture below "
        "shows the ground kept (in its photo colours, not red), add masks/ beside the photos or set "
        "asset.crop.</p>"
    )
