"""Metrics as CloudWatch embedded metric format lines on stdout (Powertools for AWS Lambda).

Lambda sends stdout to CloudWatch Logs, which turns these lines into metrics: namespace
`ImageLabeller`, dimension `service=imagelabeller`. The alarms stack uses these names.
"""

from __future__ import annotations

import threading

from aws_lambda_powertools import Metrics as PowertoolsMetrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.config import SERVICE_NAME

NAMESPACE = "ImageLabeller"


class EmfMetrics:
    def __init__(self, namespace: str = NAMESPACE, service: str = SERVICE_NAME) -> None:
        self._metrics = PowertoolsMetrics(namespace=namespace, service=service)
        # Powertools keeps one metric set per process; chalice local serves from threads.
        self._lock = threading.Lock()

    def record(self, name: str, value: float, unit: str) -> None:
        with self._lock:
            self._metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)

    def publish(self) -> None:
        with self._lock:
            self._metrics.flush_metrics(raise_on_empty_metrics=False)
