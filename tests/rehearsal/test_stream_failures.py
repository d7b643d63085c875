"""Stream failures on the deployed stage: a poison record among good ones, and
`scripts/redrive` handing back what the failure queue holds.

MiniStack writes an on-failure record only once a failing batch is older than
`MaximumRecordAgeInSeconds` (an hour here), and has no bisect or retry count, so the
redrive rehearsal puts the record Lambda would write (`DDBStreamBatchInfo`) on the queue
itself, for a range of real stream records the function never saw.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.rehearsal.conftest import Deployed, api_base_url, emulator_credentials
from tests.rehearsal.local_aws import ROOT, MiniStack
from tests.support import poll, solid_image
from tests.system.access_table import Keys
from tests.system.client import ApiClient

FUNCTION = "imagelabeller-test-label_new_images"
FAILURE_QUEUE = "imagelabeller-labelling-failed"
TABLE = "ImageLabels"
WAIT_SECONDS = 120


def owners_api(deployed: Deployed, keys: Keys) -> ApiClient:
    return ApiClient(api_base_url(deployed), api_key=keys.own)


def submit(api: ApiClient, data: bytes) -> str:
    return api.submit_upload(data, "image/png")


def status(api: ApiClient, image_id: str) -> str:
    return str(api.record(image_id)["status"])


def stored_item(emulator: MiniStack, image_id: str) -> dict[str, Any]:
    dynamodb: Any = emulator.client("dynamodb")
    item: dict[str, Any] = dynamodb.get_item(TableName=TABLE, Key={"Id": {"S": image_id}})["Item"]
    return item


def wait_for(done: Callable[[], bool]) -> None:
    assert poll(done, bool, timeout=WAIT_SECONDS), "not within the deadline"


def failure_queue_depth(emulator: MiniStack) -> int:
    sqs: Any = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=FAILURE_QUEUE)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def labelling_mapping(emulator: MiniStack) -> dict[str, Any]:
    functions: Any = emulator.client("lambda")
    [mapping] = functions.list_event_source_mappings(FunctionName=FUNCTION)["EventSourceMappings"]
    return dict(mapping)


def test_the_stream_mapping_deploys_with_its_failure_settings(
    emulator: MiniStack, first_deploy: Deployed
) -> None:
    mapping = labelling_mapping(emulator)
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 5
    assert mapping["MaximumRecordAgeInSeconds"] == 3600
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination.endswith(f":{FAILURE_QUEUE}")
    assert len(mapping["FilterCriteria"]["Filters"]) == 3


def test_a_poison_record_fails_alone_and_the_images_around_it_are_labelled(
    emulator: MiniStack, first_deploy: Deployed, keys: Keys
) -> None:
    api = owners_api(first_deploy, keys)
    dynamodb: Any = emulator.client("dynamodb")
    poison = str(uuid.uuid4())
    before = submit(api, solid_image(size=(71, 33)))
    # Written by another tool: NOT_CLASSIFIED, but no image, digest or source.
    dynamodb.put_item(
        TableName=TABLE,
        Item={"Id": {"S": poison}, "Status": {"S": "NOT_CLASSIFIED"}, "SubmittedAt": {"N": "1"}},
    )
    after = submit(api, solid_image(size=(72, 33)))

    wait_for(lambda: stored_item(emulator, poison)["Status"]["S"] == "FAILED")
    wait_for(lambda: status(api, before) == status(api, after) == "CLASSIFIED")
    assert stored_item(emulator, poison)["Error"]["S"].startswith(
        "labelling this image raised KeyError"
    )
    assert failure_queue_depth(emulator) == 0


def test_redrive_labels_what_the_failure_queue_holds(
    emulator: MiniStack, first_deploy: Deployed, keys: Keys
) -> None:
    api = owners_api(first_deploy, keys)
    functions: Any = emulator.client("lambda")
    mapping = labelling_mapping(emulator)
    functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        images = [submit(api, solid_image(size=(80 + n, 33))) for n in range(3)]
        time.sleep(3)  # the mapping is off: nothing labels them
        assert [status(api, image) for image in images] == ["NOT_CLASSIFIED"] * 3
        send_failure_record(emulator, images)

        dry = redrive(emulator, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert [status(api, image) for image in images] == ["NOT_CLASSIFIED"] * 3
        done = redrive(emulator)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [status(api, image) for image in images] == ["CLASSIFIED"] * 3
        assert failure_queue_depth(emulator) == 0
    finally:
        functions.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)


def send_failure_record(emulator: MiniStack, image_ids: list[str]) -> None:
    """What Lambda puts on the on-failure queue for a batch: where it was, not what."""
    dynamodb: Any = emulator.client("dynamodb")
    streams: Any = emulator.client("dynamodbstreams")
    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    inserts = [
        record
        for record in stream_records(streams, stream_arn, shard["ShardId"])
        if record["eventName"] == "INSERT" and record["dynamodb"]["Keys"]["Id"]["S"] in image_ids
    ]
    assert len(inserts) == len(image_ids)
    body = {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "DDBStreamBatchInfo": {
            "shardId": shard["ShardId"],
            "startSequenceNumber": inserts[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": inserts[-1]["dynamodb"]["SequenceNumber"],
            "batchSize": len(inserts),
            "streamArn": stream_arn,
        },
    }
    sqs: Any = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=FAILURE_QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def stream_records(streams: Any, stream_arn: str, shard_id: str) -> list[dict[str, Any]]:
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        answer = streams.get_records(ShardIterator=iterator)
        if not answer["Records"]:
            break
        records += answer["Records"]
        iterator = answer.get("NextShardIterator")
    return records


def redrive(emulator: MiniStack, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**emulator_credentials(), "AWS_ENDPOINT_URL": emulator.endpoint}
    return subprocess.run(
        [str(ROOT / "scripts" / "redrive"), "test", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
