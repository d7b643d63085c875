"""Structured logs: one JSON line per event, written by Powertools for AWS Lambda.

Modules keep logging with the standard `logging.getLogger(__name__)` and pass what a line
is about as keys, e.g. `log.info("image accepted", extra={"image_id": image_id})`.
configure_logging(), called once by app.py, is the one place that decides the output:
every `chalicelib.*` logger writes through Powertools' JSON formatter to stdout (Lambda sends
stdout to CloudWatch Logs), tagged `service=imagelabeller` as the metrics are. The level
comes from POWERTOOLS_LOG_LEVEL (default INFO; Lambda's own log level control wins when
set). tag_request() is a Chalice middleware adding the Lambda request id (and, for HTTP,
the route) to every line written while a handler runs.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from aws_lambda_powertools import Logger
from chalice.app import Request

from chalicelib.config import SERVICE_NAME

PACKAGE = "chalicelib"

_configured: Logger | None = None
_configure_lock = threading.Lock()


class _CurrentStdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stdout is when a line is written, as logging's last-resort
    handler does for stderr: pytest swaps sys.stdout after the app is imported."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging() -> Logger:
    """Send the `chalicelib` loggers' lines through Powertools' JSON formatter; idempotent.

    Call it before creating the Chalice app: Powertools' logger is named after the service,
    as Chalice's app logger is, and Chalice then keeps this handler rather than adding its
    plain-text one (so `app.log` lines come out as JSON too).
    """
    global _configured
    if _configured is not None:  # every request's middleware asks: no lock once set up
        return _configured
    with _configure_lock:
        if _configured is None:
            logger = Logger(
                service=SERVICE_NAME,
                logger_handler=_CurrentStdoutHandler(),
                utc=True,
                use_rfc3339=True,
            )
            logger.append_keys(name="%(name)s")  # the module that wrote the line
            # What copy_config_to_registered_loggers does, with only Powertools' handler
            # (never one another library put on the service's logger) and no registry scan.
            package = logging.getLogger(PACKAGE)
            package.handlers = [logger.registered_handler]
            package.setLevel(logger.log_level)
            package.propagate = False  # Lambda's root handler would print each line again
            _configured = logger
        return _configured


def request_keys(event: object) -> dict[str, str]:
    """The keys identifying one invocation: the Lambda request id, and for HTTP the route
    (`POST /images`) and API Gateway's own request id."""
    if isinstance(event, Request):
        gateway = event.context or {}
        keys = {
            "request_id": getattr(event.lambda_context, "aws_request_id", None),
            "api_request_id": gateway.get("requestId"),
            "route": f"{event.method} {gateway.get('resourcePath') or event.path}",
        }
    else:  # Chalice's event classes carry the Lambda context as `context`
        keys = {"request_id": getattr(getattr(event, "context", None), "aws_request_id", None)}
    return {name: str(value) for name, value in keys.items() if value}


def tag_request(event: object, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware (every event type): the lines written while the handler runs carry
    request_keys(event). The keys are per thread, so concurrent requests under
    `chalice local` never swap them; a nested invocation restores the outer keys."""
    logger = configure_logging()
    keys = request_keys(event)
    outer = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**keys)
    try:
        return get_response(event)
    finally:
        logger.thread_safe_remove_keys(keys)
        restored = {name: outer[name] for name in keys if name in outer}
        if restored:
            logger.thread_safe_append_keys(**restored)
