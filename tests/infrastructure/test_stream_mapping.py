"""The labelling function's stream mapping (issue 14, stream failures), as
.chalice/merge-template.json sets it, with the failure queue of dynamodb.yaml, the
labelling role's permission to send to it, and the filter that decides which records
invoke the function.

The filter's patterns are EventBridge syntax that Lambda evaluates; a small evaluator
of the part of that syntax they use (below) checks that they let through exactly the
records `image_ids_to_label` takes.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from chalicelib.adapters.sqlite import SqliteChangeLog, SqliteDatabase, SqliteLabelTable
from chalicelib.domain.models import ImageInfo, ImageRecord, Label, Status, utc_now
from chalicelib.events.stream import LABELLING_FILTER_PATTERNS, image_ids_to_label
from chalicelib.local.stream import change_record
from tests.infrastructure.templates import (
    CHALICE_DIR,
    Deployment,
    as_list,
    exports,
    load_template,
    one_resource_of_type,
    read_json,
)
from tools.costs.capacity import (
    RESULTS,
    SAGEMAKER_THREADS,
    endpoint_bound,
    labelling_rate,
    onnx_stage,
    sagemaker_stage,
)
from tools.costs.inputs import Workload, load_measured, stage_memory

FAILURE_QUEUE = "imagelabeller-labelling-failed"
FAILURE_QUEUE_ARN_EXPORT = "imagelabeller-dynamodb-LabellingFailedQueueArn"
FAILURE_QUEUE_URL_EXPORT = "imagelabeller-dynamodb-LabellingFailedQueueUrl"
STREAM_RETENTION_SECONDS = 24 * 3600
TWO_WEEKS_SECONDS = 14 * 24 * 3600
LABELLER_POLICIES = ("policy-labeller-onnx.json", "policy-labeller-sagemaker.json")
PARALLELIZATION_FACTOR = 4
ONE_MILLION_A_DAY = 1_000_000 / 86_400  # images/s


def mapping() -> dict[str, Any]:
    merge = read_json(CHALICE_DIR / "merge-template.json")["Resources"]
    events = merge["LabelNewImages"]["Properties"]["Events"]
    properties: dict[str, Any] = events["LabelNewImagesDynamodbEventSource"]["Properties"]
    return properties


def labeller_of_stages() -> dict[str, str]:
    stages = read_json(CHALICE_DIR / "config.json")["stages"]
    return {
        name: stage["environment_variables"]["IMAGELABELLER_LABELLER"]
        for name, stage in stages.items()
        if not name.startswith("local")
    }


def deployed_stage_variables() -> dict[str, dict[str, str]]:
    stages = read_json(CHALICE_DIR / "config.json")["stages"]
    return {
        name: stage.get("environment_variables", {})
        for name, stage in stages.items()
        if not name.startswith("local")
    }


# --- the mapping --------------------------------------------------------------------------


def test_the_mapping_filters_with_exactly_the_patterns_the_code_defines() -> None:
    criteria = mapping()["FilterCriteria"]
    assert list(criteria) == ["Filters"]
    assert all(list(entry) == ["Pattern"] for entry in criteria["Filters"])
    patterns = [json.loads(entry["Pattern"]) for entry in criteria["Filters"]]
    assert patterns == list(LABELLING_FILTER_PATTERNS)


def test_a_failing_batch_is_split_and_retried_a_bounded_number_of_times() -> None:
    properties = mapping()
    assert properties["BisectBatchOnFunctionError"] is True
    retries = properties["MaximumRetryAttempts"]
    assert isinstance(retries, int) and 0 <= retries <= 10
    # A model outage is the app's to end: each invocation counts an attempt per image and
    # the last one marks them FAILED, which takes label_max_attempts invocations.
    for stage, variables in deployed_stage_variables().items():
        attempts = int(variables.get("IMAGELABELLER_LABEL_MAX_ATTEMPTS", 3))
        assert retries + 1 >= attempts, stage


def test_records_too_old_to_label_go_to_the_failure_queue_while_the_stream_still_holds_them() -> (
    None
):
    """An hour: far longer than the retries take (they end a failing batch within
    minutes), so only a long outage or a backlog reaches it, and then the shard is held
    up for an hour at most; the stream keeps records 24 hours, which leaves scripts/redrive
    23 hours to read them. It is also the only bound MiniStack enforces (no retry count)."""
    properties = mapping()
    age = properties["MaximumRecordAgeInSeconds"]
    assert age == 3600
    assert STREAM_RETENTION_SECONDS - age >= 20 * 3600
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::ImportValue": FAILURE_QUEUE_ARN_EXPORT}}
    }


# --- how many batches of a shard run at once (docs/PERFORMANCE.md, "Past one machine") ---------


def test_up_to_four_batches_of_each_shard_run_at_once() -> None:
    """One merge template serves every stage, and scripts/configure-stage renders it for
    `chalice deploy` resolving only Ref, Fn::Sub and Fn::ImportValue, so the factor is one
    number, chosen for both kinds of stage (the two tests below)."""
    factor = mapping()["ParallelizationFactor"]
    assert factor == PARALLELIZATION_FACTOR
    assert 1 <= factor <= 10  # Lambda's range for DynamoDB streams
    assert set(labeller_of_stages().values()) == {"onnx", "sagemaker"}


def test_an_onnx_stage_labels_four_times_a_million_a_day_on_one_shard() -> None:
    """In-Lambda ONNX is bounded by how many executions run: one shard at factor 4 keeps up
    with 4 times the mean rate of a million images a day (a daily peak, or a backlog
    drained while new images keep coming), where factor 1 would leave it little room."""
    measured = load_measured(RESULTS)
    for stage, labeller in labeller_of_stages().items():
        if labeller != "onnx":
            continue
        memory, _ = stage_memory(CHALICE_DIR / "config.json", stage)
        onnx = onnx_stage(measured, Workload(label_memory_mb=memory))
        batch = measured.label_batch_size
        assert labelling_rate(onnx, 1, PARALLELIZATION_FACTOR, batch) >= 4 * ONE_MILLION_A_DAY
        assert labelling_rate(onnx, 1, 1, batch) < 1.5 * ONE_MILLION_A_DAY


def test_a_sagemaker_stage_keeps_its_endpoint_busy_without_queueing_calls_into_timeouts() -> None:
    """A SageMaker stage is bounded by the endpoint's instances, not by executions. Two
    batches at once already keep one instance busy while a batch waits on S3 and DynamoDB;
    four keep up to four instances busy. The calls of a shard's batches (4 threads each)
    then queue at one instance for 2.4 s, far inside the adapter's read timeout."""
    workload = Workload()
    for instances in (1, 2, 4):
        endpoint = sagemaker_stage(workload, instances)
        rate = labelling_rate(endpoint, 1, PARALLELIZATION_FACTOR, 16)
        assert rate == endpoint_bound(endpoint), instances
    assert labelling_rate(sagemaker_stage(workload, 1), 1, 1, 16) < endpoint_bound(
        sagemaker_stage(workload, 1)
    )
    for stage, variables in deployed_stage_variables().items():
        if labeller_of_stages()[stage] != "sagemaker":
            continue
        timeout_s = float(variables.get("IMAGELABELLER_SAGEMAKER_TIMEOUT", 30))
        in_flight = PARALLELIZATION_FACTOR * SAGEMAKER_THREADS
        queued_s = in_flight * workload.sagemaker_ms_per_image / 1000
        assert queued_s <= timeout_s / 10, stage


def test_the_mapping_keeps_reading_the_exported_stream() -> None:
    assert mapping()["Stream"] == {"Fn::ImportValue": "imagelabeller-dynamodb-StreamArn"}


# --- the failure queue (dynamodb.yaml) -------------------------------------------------------


def test_failure_queue_keeps_its_records_two_weeks_encrypted_under_its_fixed_name() -> None:
    template = load_template("dynamodb.yaml")
    queue = one_resource_of_type(template, "AWS::SQS::Queue")["Properties"]
    assert queue == {
        "QueueName": FAILURE_QUEUE,
        "MessageRetentionPeriod": TWO_WEEKS_SECONDS,
        "SqsManagedSseEnabled": True,
    }
    exported = exports(template)
    assert exported[FAILURE_QUEUE_ARN_EXPORT] == {"Fn::GetAtt": ["LabellingFailedQueue", "Arn"]}
    assert exported[FAILURE_QUEUE_URL_EXPORT] == {"Ref": "LabellingFailedQueue"}


def test_only_the_labelling_role_may_send_to_the_failure_queue() -> None:
    place = Deployment()
    queue_arn = f"arn:aws:sqs:{place.region}:{place.account_id}:{FAILURE_QUEUE}"
    senders = set()
    for path in CHALICE_DIR.glob("policy-*.json"):
        for statement in read_json(path)["Statement"]:
            resources = [
                place.resolve(resource)
                for resource in as_list(statement["Resource"])
                if "Fn::ImportValue" not in resource
            ]
            if queue_arn in resources:
                assert as_list(statement["Action"]) == ["sqs:SendMessage"], path.name
                senders.add(path.name)
    assert senders == set(LABELLER_POLICIES)


# --- which records invoke the function --------------------------------------------------------

MISSING = object()


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge's matching, for the syntax LABELLING_FILTER_PATTERNS uses: nested
    objects, and leaf lists of strings, {"exists": bool} and {"anything-but": [...]}.
    A missing field matches only {"exists": false}; a field under a missing object is
    missing too."""
    if isinstance(pattern, dict):
        inner = value if isinstance(value, dict) else {}
        return all(matches(sub, inner.get(key, MISSING)) for key, sub in pattern.items())
    assert isinstance(pattern, list), pattern
    return any(_matches_one(alternative, value) for alternative in pattern)


def _matches_one(alternative: Any, value: Any) -> bool:
    leaf = value is not MISSING and not isinstance(value, dict | list)
    if isinstance(alternative, str):
        return leaf and value == alternative
    [(operator, argument)] = alternative.items()
    if operator == "exists":
        return leaf if argument else value is MISSING
    if operator == "anything-but":
        return leaf and value not in argument
    raise AssertionError(f"the evaluator does not know {operator}: extend it with care")


def invokes(record: dict[str, Any]) -> bool:
    return any(matches(pattern, record) for pattern in LABELLING_FILTER_PATTERNS)


STATUS_VALUES: list[Any] = [
    MISSING,  # no image at all
    {},  # an image without Status
    {"Status": {"S": "NOT_CLASSIFIED"}},
    {"Status": {"S": "CLASSIFIED"}},
    {"Status": {"S": "FAILED"}},
    {"Status": {"NULL": True}},
]


def record_of(event: Any, keys: bool, old: Any, new: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"SequenceNumber": "1", "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if keys:
        body["Keys"] = {"Id": {"S": "3f2c"}}
    if old is not MISSING:
        body["OldImage"] = {"Id": {"S": "3f2c"}, **old}
    if new is not MISSING:
        body["NewImage"] = {"Id": {"S": "3f2c"}, **new}
    record: dict[str, Any] = {"eventSource": "aws:dynamodb", "dynamodb": body}
    if event is not MISSING:
        record["eventName"] = event
    return record


RECORDS = [
    record_of(event, keys, old, new)
    for event, keys, old, new in itertools.product(
        ["INSERT", "MODIFY", "REMOVE", MISSING], [True, False], STATUS_VALUES, STATUS_VALUES
    )
]


def test_the_filter_invokes_the_function_for_exactly_the_records_it_labels() -> None:
    disagreements = [
        record for record in RECORDS if invokes(record) != bool(image_ids_to_label([record]))
    ]
    assert not disagreements, json.dumps(disagreements[:3], default=str, indent=1)
    # The table holds both kinds, so the check above can fail either way.
    assert sum(invokes(record) for record in RECORDS) >= 10
    assert sum(not invokes(record) for record in RECORDS) >= 100


@pytest.mark.parametrize(
    ("alternative", "value", "expected"),
    [
        ("INSERT", "INSERT", True),
        ("INSERT", "MODIFY", False),
        ("INSERT", MISSING, False),
        ({"exists": True}, "x", True),
        ({"exists": True}, MISSING, False),
        ({"exists": True}, {"S": "x"}, False),  # exists looks at leaves only
        ({"exists": False}, MISSING, True),
        ({"exists": False}, "x", False),
        ({"anything-but": ["NOT_CLASSIFIED"]}, "FAILED", True),
        ({"anything-but": ["NOT_CLASSIFIED"]}, "NOT_CLASSIFIED", False),
        ({"anything-but": ["NOT_CLASSIFIED"]}, MISSING, False),
    ],
)
def test_the_evaluator_follows_eventbridge(alternative: Any, value: Any, expected: bool) -> None:
    assert matches({"field": [alternative]}, {} if value is MISSING else {"field": value}) is (
        expected
    )
    # A field under a missing object is missing.
    assert matches({"a": {"field": [alternative]}}, {}) is matches({"field": [alternative]}, {})


def test_of_what_the_table_writes_only_new_and_reopened_images_invoke_the_function(
    database: SqliteDatabase,
) -> None:
    """The writes of a record's life, as the stream shows them (local mode's change log
    makes the same records, every write before any filter): the insert and a relabel
    invoke; labelling's own writes (an attempt counted, the result) do not, so they never
    invoke the function again."""
    table = SqliteLabelTable(database)
    info = ImageInfo("PNG", 64, 48, 100, "ab" * 32)
    table.insert(ImageRecord("3f2c", Status.NOT_CLASSIFIED, info, utc_now()))
    table.count_attempt("3f2c")
    table.complete(
        "3f2c", (Label("tabby", 0.9),), "efficientnet-lite0/onnx", utc_now(), tenant="legacy"
    )
    table.reopen("3f2c")
    table.fail("3f2c", "the stored image is missing", None, utc_now())
    records = [
        change_record(change, "arn:aws:dynamodb:local")
        for change in SqliteChangeLog(database).read_after(0, limit=10)
    ]
    assert [record["eventName"] for record in records] == ["INSERT", *["MODIFY"] * 4]
    assert [invokes(record) for record in records] == [True, False, False, True, False]
    assert [bool(image_ids_to_label([record])) for record in records] == [
        invokes(record) for record in records
    ]
