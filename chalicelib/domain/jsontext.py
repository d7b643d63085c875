"""JSON text from outside (request bodies, page tokens) parsed without surprises."""

from __future__ import annotations

import json
from typing import Any


def loads_json(raw: str | bytes) -> Any:
    """The value `raw` holds. Malformed text, bytes that are not UTF-8, and nesting too
    deep for the parser (which raises RecursionError) all raise ValueError."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
