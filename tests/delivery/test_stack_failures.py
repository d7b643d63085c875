"""How a deploy stops when CloudFormation fails, rolls back or is busy.

moto cannot put a stack into these states, so a small stand-in for the CloudFormation
client plays them: it keeps one stack's status and its events, and its waiters fail the
way botocore's do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tools.deploy.cloudformation import DeployError, StackRequest, deploy_stack

REQUEST = StackRequest("imagelabeller-s3", {"TemplateBody": "{}"}, {}, (), {})


def validation_error(message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationError", "Message": message}}, operation)


class FakeWaiter:
    def __init__(self, cloudformation: ScriptedCloudFormation, name: str) -> None:
        self._cloudformation = cloudformation
        self._name = name

    def wait(self, **_: Any) -> None:
        self._cloudformation.calls.append(f"wait:{self._name}")
        outcome = self._cloudformation.outcomes.pop(0)
        self._cloudformation.status = outcome
        if not outcome.endswith("_COMPLETE") or "ROLLBACK" in outcome:
            raise WaiterError(self._name, "Waiter encountered a terminal failure state", {})


class ScriptedCloudFormation:
    """One stack whose status changes as the script says, after each waiter."""

    def __init__(self, status: str | None, outcomes: list[str], events: list[Any]) -> None:
        self.status = status
        self.outcomes = outcomes
        self.events = events
        self.calls: list[str] = []
        self.parameters: list[dict[str, str]] = []  # of each create and update, in order

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if self.status is None or self.status == "DELETE_COMPLETE":
            raise validation_error(f"Stack with id {StackName} does not exist", "DescribeStacks")
        return {"Stacks": [{"StackStatus": self.status, "Outputs": []}]}

    def create_stack(self, **arguments: Any) -> None:
        self.calls.append("create_stack")
        self.parameters.append(parameter_values(arguments))

    def update_stack(self, **arguments: Any) -> None:
        self.calls.append("update_stack")
        self.parameters.append(parameter_values(arguments))

    def delete_stack(self, **_: Any) -> None:
        self.calls.append("delete_stack")

    def get_waiter(self, name: str) -> FakeWaiter:
        return FakeWaiter(self, name)

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        return {"StackEvents": self.events}


def parameter_values(arguments: dict[str, Any]) -> dict[str, str]:
    return {item["ParameterKey"]: item["ParameterValue"] for item in arguments["Parameters"]}


def event(status: str, reason: str, age_seconds: float = 0) -> dict[str, Any]:
    return {
        "LogicalResourceId": "ImageBucket",
        "ResourceType": "AWS::S3::Bucket",
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": datetime.now(UTC) - timedelta(seconds=age_seconds),
    }


def test_a_rolled_back_update_stops_the_deploy_with_the_status_and_the_reason() -> None:
    events = [
        event("UPDATE_FAILED", "open-devops-images-… already exists"),
        event("UPDATE_FAILED", "an old failure from last week", age_seconds=7 * 24 * 3600),
    ]
    cloudformation = ScriptedCloudFormation("UPDATE_COMPLETE", ["UPDATE_ROLLBACK_COMPLETE"], events)

    with pytest.raises(DeployError) as failure:
        deploy_stack(cloudformation, REQUEST, print)

    message = str(failure.value)
    assert "the stack is UPDATE_ROLLBACK_COMPLETE" in message
    assert "rolled it back" in message
    assert "ImageBucket (AWS::S3::Bucket) UPDATE_FAILED: open-devops-images-… already" in message
    assert "last week" not in message


def test_a_failed_create_is_reported_and_the_next_run_deletes_and_recreates_it() -> None:
    failed = ScriptedCloudFormation(None, ["ROLLBACK_COMPLETE"], [event("CREATE_FAILED", "quota")])
    with pytest.raises(DeployError, match="the stack is ROLLBACK_COMPLETE"):
        deploy_stack(failed, REQUEST, print)

    again = ScriptedCloudFormation("ROLLBACK_COMPLETE", ["DELETE_COMPLETE", "CREATE_COMPLETE"], [])
    deploy_stack(again, REQUEST, print)

    assert again.calls == [
        "delete_stack",
        "wait:stack_delete_complete",
        "create_stack",
        "wait:stack_create_complete",
    ]


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        ("UPDATE_IN_PROGRESS", "wait until it is done"),
        ("UPDATE_ROLLBACK_FAILED", "ContinueUpdateRollback"),
        ("DELETE_FAILED", "delete it"),
    ],
)
def test_a_stack_that_cannot_take_an_update_is_left_alone_with_advice(
    status: str, advice: str
) -> None:
    cloudformation = ScriptedCloudFormation(status, [], [])

    with pytest.raises(DeployError, match=advice):
        deploy_stack(cloudformation, REQUEST, print)

    assert cloudformation.calls == []


def test_other_update_errors_are_not_taken_for_no_changes() -> None:
    class Refusing(ScriptedCloudFormation):
        def update_stack(self, **_: Any) -> None:
            raise validation_error("Template format error: unsupported structure", "UpdateStack")

    with pytest.raises(ClientError, match="Template format error"):
        deploy_stack(Refusing("UPDATE_COMPLETE", [], []), REQUEST, print)


PROTECTED = StackRequest(
    "imagelabeller-dynamodb",
    {"TemplateBody": "{}"},
    {"DeletionProtection": "true"},
    (),
    {},
    on_create={"DeletionProtection": "false"},
)


def test_a_first_create_goes_unprotected_and_the_update_after_it_protects() -> None:
    """A protected table would survive its failed create's rollback and make the next try
    fail with "already exists"; so protection comes with the update after a good create."""
    cloudformation = ScriptedCloudFormation(None, ["CREATE_COMPLETE", "UPDATE_COMPLETE"], [])
    deploy_stack(cloudformation, PROTECTED, print)

    assert cloudformation.calls == [
        "create_stack",
        "wait:stack_create_complete",
        "update_stack",
        "wait:stack_update_complete",
    ]
    assert cloudformation.parameters == [
        {"DeletionProtection": "false"},
        {"DeletionProtection": "true"},
    ]


def test_a_failed_first_create_is_not_followed_by_the_protecting_update() -> None:
    failed = ScriptedCloudFormation(None, ["ROLLBACK_COMPLETE"], [event("CREATE_FAILED", "x")])
    with pytest.raises(DeployError, match="ROLLBACK_COMPLETE"):
        deploy_stack(failed, PROTECTED, print)
    assert failed.calls == ["create_stack", "wait:stack_create_complete"]
    assert failed.parameters == [{"DeletionProtection": "false"}]


def test_an_existing_stack_is_updated_protected_only() -> None:
    cloudformation = ScriptedCloudFormation("UPDATE_COMPLETE", ["UPDATE_COMPLETE"], [])
    deploy_stack(cloudformation, PROTECTED, print)
    assert cloudformation.parameters == [{"DeletionProtection": "true"}]
