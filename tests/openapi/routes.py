"""The operations app.py routes, as "METHOD /path" labels like the document's."""

from __future__ import annotations

from app import app


def served_operations() -> set[str]:
    return {f"{method} {path}" for path, entries in app.routes.items() for method in entries}


def served(label: str) -> bool:
    return label in served_operations()
