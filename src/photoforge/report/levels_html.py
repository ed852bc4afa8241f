"""The report's "Detail levels" section: each delivered GLB, what it holds, how faithful it is."""

from __future__ import annotations

import html
from typing import Any

from photoforge.report.markup import fmt


def levels_section(levels: dict[str, Any]) -> str:
    """One row per GLB (asset.glb's level, the LODs, the web GLB), then what the columns mean."""
    head = (
        "<tr><th>file</th><th>level</th><th>faces</th><th>texture</th><th>maps</th><th>MB</th>"
        "<th>glTF-Validator</th><th>left-out PSNR</th><th>normal error: own / mapped</th>"
        "<th>distance to high-res: max / mean</th></tr>"
    )
    rows = [_row(level) for level in levels["files"]]
    web = levels.get("web")
    if web is not None:
        if web["written"]:
            rows.append(
                _cells(["asset.web.glb", f"as asset.glb, {web['tool']}", "", "", "", _mb(web["bytes"]),
                        f"{_validator(web.get('gltf_validator'))}; decoded: {_validator(web.get('decoded_validator'))}",
                        "", "", ""])
            )  # fmt: skip
        else:
            rows.append(_cells(["asset.web.glb", f"not written: {web['reason']}", *[""] * 8]))
    note = (
        "<p>normal error: median angle between the shading normals and the high-res surface's at random points "
        "of the low-poly, with its own interpolated normals / with the normal map. A level whose face budget "
        "is at or above the mesh's faces keeps the mesh as it is (no normal map: nothing to carry). The web "
        "GLB is validated as shipped and with its meshopt geometry decoded (the validator cannot read it).</p>"
    )
    return f"<table>{head}{''.join(rows)}</table>{note}"


def _row(level: dict[str, Any]) -> str:
    detail = level.get("detail")
    normals = f"{detail['normal_error_own_deg']:.2f}° / {detail['normal_error_mapped_deg']:.2f}°" if detail else ""
    distance = f"{fmt(detail['hausdorff'])} / {fmt(detail['mean_distance'])}" if detail else ""
    psnr = level.get("psnr_left_out")
    return _cells([
        level["file"], level["level"], level["faces"], f"{level['texture_size']} px", "+".join(level["maps"]),
        _mb(level["bytes"]), _validator(level["gltf_validator"]), f"{psnr:.2f} dB" if psnr is not None else "",
        normals, distance,
    ])  # fmt: skip


def _validator(validation: dict[str, Any] | None) -> str:
    if not validation or not validation.get("available"):
        return f"not run: {(validation or {}).get('reason', 'no result')}"
    return f"{validation['errors']} errors, {validation['warnings']} warnings"


def _mb(size: int | None) -> str:
    return f"{size / 1e6:.2f}" if size else ""


def _cells(values: list[Any]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in values) + "</tr>"
