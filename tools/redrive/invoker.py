"""How redrive hands images back to labelling: one synchronous invocation of the stage's
labelling function per chunk (an interface, so that tests can see what it was given)."""

from __future__ import annotations

import json
from typing import Any, Protocol


class InvocationFailed(Exception):
    """The labelling function raised (or could not be invoked): its images are not done."""


class LabellingInvoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> None:
        """Run the labelling function on `event` and wait; InvocationFailed if it raised."""
        ...


class LambdaInvoker:
    """`lambda.invoke`, RequestResponse, on `<app stack>-label_new_images`."""

    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._client = lambda_client
        self.function_name = function_name

    def invoke(self, event: dict[str, Any]) -> None:
        answer = self._client.invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = answer["Payload"].read().decode(errors="replace")
        if answer.get("FunctionError"):
            raise InvocationFailed(f"{self.function_name} raised: {payload[:1000]}")
