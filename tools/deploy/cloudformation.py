"""Create a stack that does not exist, update one that does, and wait until it is done.

"No updates are to be performed" is success. A failed create or update stops the deploy
with the stack's status and the first reasons CloudFormation gives in its events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

Say = Callable[[str], None]

# Stacks in these states take an update (UpdateStack); see CloudFormation's stack states.
UPDATABLE = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
# A stack whose creation failed and was rolled back: it holds nothing and cannot be
# updated, only deleted.
FAILED_CREATE = "ROLLBACK_COMPLETE"
# Poll every 10 s for up to an hour: a SageMaker endpoint takes about 10 minutes.
WAITER_CONFIG = {"Delay": 10, "MaxAttempts": 360}
NO_UPDATES = "No updates are to be performed"
FAILURES_SHOWN = 5
# Our clock and CloudFormation's may differ a little; events this much older than the
# start of an operation still count as its events.
CLOCK_SKEW = timedelta(seconds=30)


class DeployError(Exception):
    """A deploy step failed; the message says what and where to look."""


@dataclass(frozen=True)
class StackRequest:
    """One CreateStack/UpdateStack call, with every value resolved."""

    name: str
    template: Mapping[str, str]  # {"TemplateBody": ...} or {"TemplateURL": ...}
    parameters: Mapping[str, str]
    capabilities: Sequence[str]
    tags: Mapping[str, str]
    # Parameters that differ for the stack's first create, which an update then sets to
    # `parameters` (e.g. deletion protection, which would keep a failed create's table).
    on_create: Mapping[str, str] = field(default_factory=dict)

    def for_create(self) -> StackRequest:
        return replace(self, parameters={**self.parameters, **self.on_create}, on_create={})

    def arguments(self) -> dict[str, Any]:
        return {
            "StackName": self.name,
            **self.template,
            "Parameters": [
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in self.parameters.items()
            ],
            "Capabilities": list(self.capabilities),
            "Tags": [{"Key": key, "Value": value} for key, value in self.tags.items()],
        }


def deploy_stack(client: Any, request: StackRequest, say: Say) -> dict[str, str]:
    """Bring the stack to the request's template and parameters; return its outputs."""
    status = stack_status(client, request.name)
    if status == FAILED_CREATE:
        say(f"{request.name}: {status} (an earlier create failed; the stack holds nothing)")
        say(f"{request.name}: deleting it to create it again")
        started = now()
        client.delete_stack(StackName=request.name)
        wait_for(client, request.name, "stack_delete_complete", "delete", started)
        status = None
    if status is None:
        create_stack(client, request.for_create(), say)
        if request.on_create:
            settings = ", ".join(f"{name}={request.parameters[name]}" for name in request.on_create)
            say(f"{request.name}: created; now {settings}")
            update_stack(client, request, say)
    elif status in UPDATABLE:
        update_stack(client, request, say)
    else:
        raise DeployError(f"{request.name} is {status}: {advice_for(status)}")
    return stack_outputs(client, request.name)


def create_stack(client: Any, request: StackRequest, say: Say) -> None:
    say(f"{request.name}: creating")
    started = now()
    client.create_stack(**request.arguments())
    wait_for(client, request.name, "stack_create_complete", "create", started)
    say(f"{request.name}: CREATE_COMPLETE in {seconds_since(started)} s")


def update_stack(client: Any, request: StackRequest, say: Say) -> None:
    started = now()
    try:
        client.update_stack(**request.arguments())
    except Exception as error:
        if NO_UPDATES in error_message(error):
            say(f"{request.name}: no changes")
            return
        raise
    say(f"{request.name}: updating")
    wait_for(client, request.name, "stack_update_complete", "update", started)
    say(f"{request.name}: UPDATE_COMPLETE in {seconds_since(started)} s")


def stack_status(client: Any, name: str) -> str | None:
    """The stack's status, or None when there is no such stack."""
    try:
        stacks = client.describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        if "does not exist" in error_message(error):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def stack_outputs(client: Any, name: str) -> dict[str, str]:
    stack = client.describe_stacks(StackName=name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def wait_for(client: Any, name: str, waiter_name: str, operation: str, started: datetime) -> None:
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter(waiter_name).wait(StackName=name, WaiterConfig=WAITER_CONFIG)
    except WaiterError as error:
        status = stack_status(client, name) or "deleted"
        reasons = failure_reasons(client, name, started)
        raise DeployError(failure_message(name, operation, status, reasons, str(error))) from error


def failure_message(
    name: str, operation: str, status: str, reasons: Sequence[str], waiter_error: str
) -> str:
    lines = [f"{name}: the {operation} did not complete; the stack is {status}."]
    if status.endswith("ROLLBACK_COMPLETE"):
        lines.append("CloudFormation rolled it back; nothing of this attempt remains.")
    elif status.endswith("_IN_PROGRESS"):
        lines.append("It is still in progress after the waiter gave up; look again later.")
    if reasons:
        lines.append("What failed (oldest first):")
        lines.extend(f"  {reason}" for reason in reasons)
    else:
        lines.append(f"The waiter said: {waiter_error}")
    lines.append(f"All events: the CloudFormation console, stack {name}, tab Events.")
    return "\n".join(lines)


def failure_reasons(client: Any, name: str, since: datetime) -> list[str]:
    """`LogicalId (Type) STATUS: reason` for the resources that failed since `since`."""
    try:
        events = client.describe_stack_events(StackName=name)["StackEvents"]
    except Exception:  # the stack may be gone (a failed delete, a deleted stack)
        return []
    failed = [
        event
        for event in events
        if str(event.get("ResourceStatus", "")).endswith("_FAILED")
        and event["Timestamp"] >= since - CLOCK_SKEW
        and "Resource creation cancelled" not in event.get("ResourceStatusReason", "")
    ]
    failed.sort(key=lambda event: event["Timestamp"])
    return [
        f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}) "
        f"{event['ResourceStatus']}: {event.get('ResourceStatusReason', 'no reason given')}"
        for event in failed[:FAILURES_SHOWN]
    ]


def advice_for(status: str) -> str:
    if status.endswith("_IN_PROGRESS"):
        return "another deploy or a person is changing it; wait until it is done, then re-run"
    if status == "UPDATE_ROLLBACK_FAILED":
        return (
            "the rollback of an update failed; fix the cause, then ContinueUpdateRollback "
            "(console: Stack actions > Continue update rollback), then re-run"
        )
    if status in ("DELETE_FAILED", "ROLLBACK_FAILED"):
        return "delete it (console, retaining the resources that failed to delete), then re-run"
    return "CloudFormation cannot update a stack in this state; see its events"


def error_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", error))
    return str(error)


def now() -> datetime:
    return datetime.now(UTC)


def seconds_since(started: datetime) -> int:
    return int((datetime.now(UTC) - started).total_seconds())
