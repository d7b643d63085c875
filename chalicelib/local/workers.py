"""The background workers `chalice local` runs in place of AWS's event sources: the
DynamoDB stream's (labelling) and the callback queue's (delivery)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib import config
from chalicelib.bootstrap import local_callback_poller, local_stream_poller
from chalicelib.local import dev_key, dev_server

Handler = Callable[[dict[str, Any], Any], Any]


class Worker(Protocol):
    def start(self) -> None: ...


_running: dict[str, Worker | None] = {}
_start_lock = threading.Lock()


def start_under_chalice_local(
    label_handler: Handler, callback_handler: Handler, stream_arn: str
) -> None:
    """Under `chalice local` only (not `chalice package`, not tests): tune its server, print
    the development API key (local backend), and start both workers, once per process
    (app.py may be imported more than once)."""
    if not config.running_under_chalice_local():
        return
    settings = config.Settings.from_environ()
    dev_server.tune(settings.limits.max_image_bytes)
    dev_key.announce_dev_key(settings, sys.argv)
    if settings.local_stream:
        start_once("stream", lambda: local_stream_poller(label_handler, stream_arn))
    start_once("callbacks", lambda: local_callback_poller(callback_handler))


def start_once(name: str, factory: Callable[[], Worker | None]) -> Worker | None:
    """Start the process's one worker called `name`; a factory may answer None when the
    worker has nothing to do here."""
    with _start_lock:
        if name not in _running:
            worker = factory()
            if worker is not None:
                worker.start()
            _running[name] = worker
        return _running[name]
