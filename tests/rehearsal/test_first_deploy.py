"""The first real deploy, rehearsed: `scripts/deploy test` against MiniStack.

The deploy runs its real code path (not the dry run): every stack, `chalice package`, the
upload, the app stack, the migration of the tables to tenants, the alarms and the system
tests (tests/system/test_api.py, through the emulator's API Gateway, with a key the deploy
makes in the emulator's table and revokes after them), with the Lambda functions executed
by the emulator from the deployment zip. `IMAGELABELLER_DEPLOY_EMULATOR` changes only what
tools/deploy/emulator.py lists: the endpoints, the photo source (a loopback server, so the
functions may fetch private addresses), no metric-math alarm and no alarm mail. The second
deploy finds data from before tenants (a legacy image stored back the way it was then)
and moves it to the legacy tenant.

What the emulator cannot show, and only a real account will: IAM enforcement of the
functions' own roles, API Gateway's gateway responses read from the swagger (the 404
shape: tests/system skips that one test here), CloudWatch alarms firing, the SageMaker
endpoint, cold starts and memory limits, and Lambda's real runtime image (the functions
run on MiniStack's Python 3.12 with the zip's packages).
"""

from __future__ import annotations

import re
from typing import Any

from tests.infrastructure.templates import load_template, resources_of_type
from tests.rehearsal.conftest import (
    SETTINGS,
    STACKS,
    STAGE,
    Deployed,
    alarmed_functions_missing,
    api_base_url,
    api_keys,
    outputs,
    run_deploy,
)
from tests.rehearsal.local_aws import MiniStack
from tests.support import PHOTO_FILES, LoopbackServer, poll
from tests.system.client import ApiClient
from tools.costs.capacity import parallelization_factor
from tools.deploy.calls import read_call_log
from tools.deploy.policy_check import missing_permissions

Item = dict[str, Any]


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


def test_the_deployed_stream_mapping_runs_several_batches_of_a_shard_at_once(
    emulator: MiniStack, first_deploy: Deployed
) -> None:
    """The merge template's ParallelizationFactor reaches the event source mapping that
    CloudFormation made from the packaged template (through the SAM transform), as
    Lambda's ListEventSourceMappings reports it. MiniStack keeps and reports the field but
    still runs a shard's batches one at a time; what the factor does to throughput is
    docs/PERFORMANCE.md's model, not measured here."""
    functions: Any = emulator.client("lambda")
    listed = functions.list_event_source_mappings(
        FunctionName=f"imagelabeller-{STAGE}-label_new_images"
    )
    [mapping] = listed["EventSourceMappings"]
    assert (
        mapping["EventSourceArn"] == outputs(emulator, SETTINGS.stack("dynamodb").name)["StreamArn"]
    )
    assert mapping["ParallelizationFactor"] == parallelization_factor() == 4


def test_the_system_tests_had_a_key_of_their_own_which_is_revoked_and_never_shown(
    emulator: MiniStack, first_deploy: Deployed
) -> None:
    text = first_deploy.output
    made = re.findall(r"system tests: made API key ([0-9a-f]{16}) of tenant system-tests", text)
    assert len(made) == 1, text[-4000:]
    [key_id] = made
    assert f"system tests: API key {key_id} revoked" in text
    assert f"ilk_{key_id}_" not in text  # the key itself
    records = {record.key_id: record for record in api_keys(emulator).list("system-tests")}
    assert records[key_id].revoked
    assert f"stage {STAGE}" in str(records[key_id].label)


def test_a_second_deploy_changes_no_stack_and_moves_older_data_to_the_legacy_tenant(
    emulator: MiniStack, photos: LoopbackServer, first_deploy: Deployed
) -> None:
    before = {stack: outputs(emulator, stack) for stack in STACKS}
    legacy = ApiClient(api_base_url(first_deploy))  # no key: the original's open routes
    image_id = legacy.legacy_submit(photos.url(f"/{PHOTO_FILES['motorcycle']}"), keyless=True)
    label = poll(
        lambda: legacy.legacy_label(image_id, keyless=True),
        lambda current: current != "NOT_CLASSIFIED",
        timeout=120,
    )
    record, index_items = stored_before_tenants(emulator, image_id)

    again = run_deploy(emulator, photos, "second")

    assert again.exit_code == 0, again.output[-6000:]
    for stack in STACKS:
        assert f"{stack}: no changes" in again.output, again.output
    assert "uploading" not in again.output
    assert {stack: outputs(emulator, stack) for stack in STACKS} == before
    assert f"migrated: {1 + len(index_items)} changes" in again.output
    assert stored_items(emulator, image_id) == (record, index_items)
    assert legacy.legacy_label(image_id, keyless=True) == label
    assert missing_permissions(again.call_log) == []
    actions = {call["action"] for call in read_call_log(again.call_log)}
    assert {"dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"} <= actions


def stored_items(emulator: MiniStack, image_id: str) -> tuple[Item, list[Item]]:
    """The image's record, and its items in the search table (entries, byte claim)."""
    dynamodb: Any = emulator.client("dynamodb")
    record = dynamodb.get_item(
        TableName=SETTINGS.table, Key={"Id": {"S": image_id}}, ConsistentRead=True
    )["Item"]
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=SETTINGS.label_index_table, ConsistentRead=True
    )
    items = [
        item
        for page in pages
        for item in page["Items"]
        if item.get("ImageId", {}).get("S") == image_id
    ]
    return record, sorted(items, key=lambda item: str(item["LabelKey"]["S"]))


def stored_before_tenants(emulator: MiniStack, image_id: str) -> tuple[Item, list[Item]]:
    """Store a legacy image the way the service stored it before tenants: its record with
    no Tenant, its search entries and byte claim under keys without `legacy#`. Returns
    what was stored before, which the migration must give back."""
    record, items = stored_items(emulator, image_id)
    assert record["Tenant"] == {"S": "legacy"} and record["Status"] == {"S": "CLASSIFIED"}
    assert any(item["LabelKey"]["S"].startswith("legacy#") for item in items), items
    dynamodb: Any = emulator.client("dynamodb")
    dynamodb.update_item(
        TableName=SETTINGS.table, Key={"Id": record["Id"]}, UpdateExpression="REMOVE Tenant"
    )
    for item in items:
        old_key = item["LabelKey"]["S"].replace("legacy#", "", 1)
        table = SETTINGS.label_index_table
        dynamodb.put_item(TableName=table, Item={**item, "LabelKey": {"S": old_key}})
        dynamodb.delete_item(
            TableName=table, Key={"LabelKey": item["LabelKey"], "Rank": item["Rank"]}
        )
    return record, items


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
