"""The background workers `chalice local` runs in place of AWS's event sources."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


class Worker(Protocol):
    def start(self) -> None: ...


_running: dict[str, Worker | None] = {}
_start_lock = threading.Lock()


def start_once(name: str, factory: Callable[[], Worker | None]) -> Worker | None:
    """Start the process's one worker called `name` (app.py may be imported more than
    once); a factory may answer None when the worker has nothing to do here."""
    with _start_lock:
        if name not in _running:
            worker = factory()
            if worker is not None:
                worker.start()
            _running[name] = worker
        return _running[name]
