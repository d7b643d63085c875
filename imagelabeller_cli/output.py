"""How results are shown: one line per file or record for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib.domain.models import Label
from imagelabeller_cli.api_client import ApiError, KeyRefused, RateLimited
from imagelabeller_cli.local_labelling import FileResult

MAKE_A_KEY = "`imagelabeller keys create --tenant NAME`"


def percent_labels(labels: Iterable[tuple[str, float]]) -> str:
    """`espresso 95.1%, cup 1.5%`: names with their scores as percentages, best first."""
    return ", ".join(f"{name} {score * 100:.1f}%" for name, score in labels)


def file_result_line(result: FileResult) -> str:
    if result.error is not None:
        return f"{result.path}: error: {result.error}"
    if result.skipped is not None:
        return f"{result.path}: skipped: {result.skipped}"
    return f"{result.path}: {percent_labels((label.name, label.score) for label in result.labels)}"


def file_result_json(result: FileResult) -> dict[str, Any]:
    return {
        "path": str(result.path),
        "labels": [_label_json(label) for label in result.labels],
        "error": result.error,
        "skipped": result.skipped,
    }


def file_results_json(results: Sequence[FileResult]) -> str:
    return json.dumps([file_result_json(result) for result in results], indent=2)


def label_summary(results: Sequence[FileResult]) -> str:
    failed = sum(result.failed for result in results)
    skipped = sum(result.skipped is not None for result in results)
    labelled = len(results) - failed - skipped
    return f"{labelled} labelled, {failed} failed, {skipped} skipped"


def record_line(record: dict[str, Any]) -> str:
    """`<id>: CLASSIFIED: espresso 95.1%, ...`, `<id>: FAILED: <why>`, `<id>: NOT_CLASSIFIED`."""
    head = f"{record.get('image_id')}: {record.get('status')}"
    if record.get("status") == "CLASSIFIED":
        labels = ((label["name"], float(label["score"])) for label in record.get("labels", []))
        return f"{head}: {percent_labels(labels)}"
    if record.get("error"):
        return f"{head}: {record['error']}"
    return head


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2)


def _label_json(label: Label) -> dict[str, Any]:
    return {"name": label.name, "score": label.score}


def api_error_text(error: ApiError, key_source: str | None) -> str:
    """What the API refused, in words: a refused or missing key says how to make one and
    where the key came from (never the key), a 429 when to try again; else `code: message`."""
    if isinstance(error, KeyRefused):
        if key_source is None:
            return (
                f"the API needs an API key: {error.message}; give one with --api-key or "
                f"$IMAGELABELLER_API_KEY (make one with {MAKE_A_KEY})"
            )
        return (
            f"the API refused the key from {key_source}: {error.message}; "
            f"make one with {MAKE_A_KEY}"
        )
    if isinstance(error, RateLimited):
        when = "later" if error.retry_after is None else f"in {error.retry_after} s"
        return f"too many requests: {error.message}; try again {when}"
    return str(error)
