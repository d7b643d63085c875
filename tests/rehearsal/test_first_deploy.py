"""The first real deploy, rehearsed: `scripts/deploy test` against MiniStack.

The deploy runs its real code path (not the dry run): every stack, `chalice package`, the
upload, the app stack, the alarms and the system tests (tests/system/test_api.py, through
the emulator's API Gateway), with the Lambda functions executed by the emulator from the
deployment zip. `IMAGELABELLER_DEPLOY_EMULATOR` changes only what tools/deploy/emulator.py
lists: the endpoints, the photo source (a loopback server, so the functions may fetch
private addresses), no metric-math alarm and no alarm mail.

What the emulator cannot show, and only a real account will: IAM enforcement of the
functions' own roles, API Gateway's gateway responses read from the swagger (the 404
shape: tests/system skips that one test here), CloudWatch alarms firing, the SageMaker
endpoint, cold starts and memory limits, and Lambda's real runtime image (the functions
run on MiniStack's Python 3.12 with the zip's packages).
"""

from __future__ import annotations

from typing import Any

from tests.infrastructure.templates import load_template, resources_of_type
from tests.rehearsal.conftest import (
    STACKS,
    STAGE,
    Deployed,
    alarmed_functions_missing,
    outputs,
    run_deploy,
)
from tests.rehearsal.local_aws import MiniStack
from tests.support import LoopbackServer
from tools.deploy.calls import read_call_log
from tools.deploy.policy_check import missing_permissions


def test_the_first_deploy_creates_every_stack_and_passes_the_system_tests(
    emulator: MiniStack, first_deploy: Deployed
) -> None:
    text = first_deploy.output
    cloudformation: Any = emulator.client("cloudformation")
    for stack in STACKS:
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        # The dynamodb stack's protecting update follows its create (below).
        assert status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), (stack, status)
        assert f"{stack}: CREATE_COMPLETE" in text
    assert "system tests: IMAGELABELLER_BASE_URL=" in text
    summary = [line for line in text.splitlines() if line.startswith("=") and "passed" in line]
    assert summary and "failed" not in summary[-1], text[-4000:]
    assert f"deployed {STAGE} in us-west-1" in text
    # Created unprotected (a failed create's rollback could not delete a protected table),
    # then protected by the update right after.
    assert "imagelabeller-dynamodb: created; now DeletionProtection=true" in text
    dynamodb: Any = emulator.client("dynamodb")
    for table in ("ImageLabels", "ImageLabelIndex"):
        assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"]


def test_the_alarms_exist_before_the_system_tests_run(
    emulator: MiniStack, first_deploy: Deployed
) -> None:
    text = first_deploy.output
    assert text.index("imagelabeller-alarms: CREATE_COMPLETE") < text.index("system tests:")
    expected = {
        name
        for name, resource in resources_of_type(
            load_template("alarms.yaml"), "AWS::CloudWatch::Alarm"
        ).items()
        if resource.get("Condition") not in ("HasEndpoint", "WithMetricMath")
        # Skipped here: the SageMaker alarms (this stage labels with ONNX in Lambda) and the
        # metric-math alarm, which the emulator refuses.
    }
    cloudwatch: Any = emulator.client("cloudwatch")
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    assert len(alarms) == len(expected), sorted(alarm["AlarmName"] for alarm in alarms)
    assert all(alarm["AlarmName"].startswith("imagelabeller-test-") for alarm in alarms)
    assert alarmed_functions_missing(emulator) == []


def test_a_second_deploy_changes_nothing(
    emulator: MiniStack, photos: LoopbackServer, first_deploy: Deployed
) -> None:
    before = {stack: outputs(emulator, stack) for stack in STACKS}
    again = run_deploy(emulator, photos, "second")
    assert again.exit_code == 0, again.output[-6000:]
    for stack in STACKS:
        assert f"{stack}: no changes" in again.output, again.output
    assert "uploading" not in again.output
    assert {stack: outputs(emulator, stack) for stack in STACKS} == before
    assert missing_permissions(again.call_log) == []


def test_every_call_the_first_deploy_made_is_allowed_by_the_deployer_policy(
    first_deploy: Deployed,
) -> None:
    """The deploy recorded every AWS call it made (IMAGELABELLER_DEPLOY_CALL_LOG); each
    needs an action docs/deployer-policy.json allows on that resource. What CloudFormation
    calls on the deployer's behalf is checked from the templates' resource types
    (tests/delivery/test_deployer_policy.py)."""
    calls = read_call_log(first_deploy.call_log)
    actions = {call["action"] for call in calls}
    assert {"cloudformation:CreateStack", "s3:PutObject", "sts:GetCallerIdentity"} <= actions
    assert missing_permissions(first_deploy.call_log) == []
