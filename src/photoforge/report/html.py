"""The QA report as one self-contained HTML page (images embedded), from report.json's data."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from photoforge.layout import SPLAT_VIDEO, VIDEO
from photoforge.report.isolation_html import asset_section, scale_section
from photoforge.report.levels_html import levels_section
from photoforge.report.markup import fmt, table
from photoforge.report.viewer import VIEWER_CSS, ViewerConfig, section

SECTIONS = (
    ("verdict", "Verdict"),
    ("viewer", "3D viewer"),
    ("inputs", "Inputs"),
    ("poses", "Camera poses"),
    ("scale", "Scale"),
    ("depth", "Dense depth"),
    ("fusion", "Fused point cloud"),
    ("asset", "The object alone"),
    ("splat", "Gaussian splats"),
    ("mesh", "Mesh"),
    ("texture", "Texture"),
    ("levels", "Detail levels"),
    ("evaluation", "Left-out views"),
    ("turntable", "Turntable"),
    ("stages", "Stages"),
    ("versions", "Versions and settings"),
)
RUN_PLACEHOLDER = "<!--photoforge:this-run-->"


def image_data_uri(path: Path, max_width: int = 960) -> str:
    """A JPEG data URI of an image file, downscaled to max_width."""
    import cv2  # when a report is written, not when outputs are published

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, (max_width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(np.asarray(data).tobytes()).decode()


def _img(uri: str, caption: str) -> str:
    text = html.escape(caption)
    return f'<figure><img src="{uri}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def render(report: dict[str, Any], images: dict[str, list[tuple[str, str]]]) -> str:
    """The page: one <section id=...> per entry of SECTIONS; `images` maps a section to (uri, caption)s."""
    body = []
    for key, title in SECTIONS:
        if key not in report:
            continue  # a stage this run left out (the splats, or scale and asset in an older run)
        content = _section(key, report)
        figures = "".join(_img(uri, caption) for uri, caption in images.get(key, []))
        body.append(f'<section id="{key}"><h2>{title}</h2>{content}<div class="figures">{figures}</div></section>')
    title = f"photoforge report: {html.escape(report['capture'])}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: .5em 0; }} th, td {{ padding: 2px 10px; border-bottom: 1px solid #eee;
text-align: left; vertical-align: top; }} th {{ color: #555; font-weight: 600; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 10px; }} figure {{ margin: 0; }}
figure img {{ max-width: 520px; display: block; border: 1px solid #ccc; }}
#levels figure img {{ max-width: 100%; }}
figcaption {{ font-size: 12px; color: #555; }} .ok {{ color: #1a7f37; }} .bad {{ color: #c62828; font-weight: 600; }}
.unchecked {{ color: #9a6700; font-weight: 600; }}
.hint {{ background: #fff8e1; border-left: 3px solid #e0a800; padding: .4em .8em; }}
video {{ max-width: 640px; display: block; }}
{VIEWER_CSS}</style></head>
<body><h1>{title}</h1><p>preset <b>{html.escape(report["preset"])}</b>,
overrides {html.escape(json.dumps(report.get("overrides", {})))}</p>
{RUN_PLACEHOLDER}
{"".join(body)}
</body></html>
"""


def _section(key: str, r: dict[str, Any]) -> str:
    if key == "verdict":
        items = []
        for check in r["checks"]:
            css, mark = {
                "passed": ("ok", "pass"),
                "failed": ("bad", f"FAIL: look at stage {check['stage']}"),
            }.get(check["status"], ("unchecked", "NOT CHECKED"))
            why = f": {check['reason']}" if check.get("reason") else ""
            items.append(
                f"<li class='{css}' data-status='{html.escape(check['status'])}'>{html.escape(check['name'])}: "
                f"{html.escape(fmt(check['value']))} ({html.escape(mark + why)})</li>"
            )
        return f"<p><b>{html.escape(r['verdict'])}</b></p><ul>{''.join(items)}</ul>"
    if key == "inputs":
        rejected = [(f["source"], f["reason"]) for f in r["inputs"]["rejected"]]
        rows = [
            ("photos", r["inputs"]["photos"]),
            ("videos", r["inputs"]["videos"]),
            ("frames kept", r["inputs"]["kept"]),
        ]
        rows += [("skipped files", ", ".join(r["inputs"]["skipped"]) or "none")]
        return table(rows) + (("<h3>Rejected</h3>" + table(rejected)) if rejected else "<p>No frame rejected.</p>")
    if key == "stages":
        rows = [(s["stage"], f"{s['compute_seconds']:.1f} s to compute, key {s['key']}") for s in r["stages"]]
        return table(rows)
    if key == "versions":
        return table(sorted(r["versions"].items()))
    if key == "turntable":
        video = f'<video src="{VIDEO}" controls loop muted playsinline></video>'
        if "splat" in r:
            video += f'<video src="{SPLAT_VIDEO}" controls loop muted playsinline></video>'
        return video + table(sorted(r["turntable"].items()))
    if key == "scale":
        return scale_section(r["scale"])
    if key == "asset":
        return asset_section(r["asset"])
    if key == "levels":
        return levels_section(r["levels"])
    if key == "viewer":
        return section(ViewerConfig.model_validate(r["viewer"]))
    if key == "evaluation":
        rows = [
            (e["name"], f"{'left out' if e['left_out'] else 'used'}: PSNR {e['psnr']} dB, SSIM {e['ssim']}, "
             f"the mesh covers {e['coverage']:.0%} of what it saw")
            for e in r["evaluation"]
        ]  # fmt: skip
        return table(rows)
    return table(sorted((k, v) for k, v in r[key].items() if k != "summary"))
