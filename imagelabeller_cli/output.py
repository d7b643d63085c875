"""How results are shown: one line per file or record for people, JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib.domain.models import Label
from imagelabeller_cli.local_labelling import FileResult


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
