"""Generated sections of a document: the text between a start and an end marker line."""

from __future__ import annotations


class MissingMarkersError(ValueError):
    """The document lacks the start marker, or an end marker after it."""


def replace_between(document: str, block: str, start: str, end: str) -> str:
    """`document` with the text between `start` and the first `end` after it replaced by
    `block` (without blank lines around it) on lines of its own; the markers and everything
    outside them stay as they are."""
    head = document.find(start)
    tail = document.find(end, head + len(start)) if head >= 0 else -1
    if tail < 0:
        raise MissingMarkersError(f"the document needs the lines {start} and {end}, in that order")
    return f"{document[: head + len(start)]}\n{block.strip()}\n{document[tail:]}"
