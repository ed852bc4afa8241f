"""HTML pieces the report's sections share: a table of named values, a value as text."""

from __future__ import annotations

import html
import json
from typing import Any


def table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def fmt(value: Any) -> str:
    """A value as a person reads it: 4 significant digits, lists and dicts as JSON, None as nothing."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else str(value)
