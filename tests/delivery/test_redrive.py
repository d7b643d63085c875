"""`scripts/redrive <stage>` (tools/redrive) on moto: the failure queue, the table's stream
and the table are moto's; moto runs no Lambda function, so the invoker is a stand-in that
parses the event as chalice does for label_new_images and runs the labelling use case on
the same moto storage. The real invoker's request is checked with botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from chalice.app import DynamoDBEvent

from chalicelib.adapters import transient
from chalicelib.adapters.dynamodb import DynamoDBLabelTable
from chalicelib.adapters.onnx import OnnxLabeller
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.config import Limits
from chalicelib.domain.models import Status
from chalicelib.events.stream import image_ids_to_label
from chalicelib.use_cases import UseCases, wire
from tests.fixtures.aws import REGION, TABLE
from tests.support import TENANT, NoNetwork, solid_image
from tools.deploy.settings import PROJECT_DIR, load_stage
from tools.redrive import cli
from tools.redrive.invoker import InvocationFailed, LambdaInvoker
from tools.redrive.redrive import FAILURE_QUEUE, Redrive, RedriveReport
from tools.redrive.stream import StreamRecords
from tools.redrive.table import ImageStatuses

FUNCTION = "imagelabeller-test-label_new_images"


class HandlerInvoker:
    """Stands in for `lambda.invoke` of label_new_images: chalice's own parse of the event
    (DynamoDBEvent, which fails on a record missing a field Lambda sends), then what the
    handler does with it. `fail_first` invocations raise as a failing function would."""

    def __init__(self, service: UseCases, fail_first: int = 0) -> None:
        self.service = service
        self.fail_first = fail_first
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> None:
        self.events.append(json.loads(json.dumps(event)))  # what would go over the wire
        if len(self.events) <= self.fail_first:
            raise InvocationFailed(f"{FUNCTION} raised: ThrottlingException")
        records = DynamoDBEvent(event, context=None)
        self.service.labelling.label_images(image_ids_to_label(r.to_dict() for r in records))

    def image_ids(self) -> list[str]:
        return [r["dynamodb"]["Keys"]["Id"]["S"] for e in self.events for r in e["Records"]]


@dataclass
class World:
    service: UseCases
    dynamodb: Any
    streams: Any
    sqs: Any
    queue_url: str
    stream_arn: str
    lines: list[str]

    def submit(self, count: int, start: int = 0) -> list[str]:
        return [
            self.service.submission.submit_upload(
                TENANT, solid_image(size=(30 + n, 20))
            ).record.image_id
            for n in range(start, start + count)
        ]

    def stream_records(self) -> list[dict[str, Any]]:
        shard = self.shard_id()
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = self.streams.get_records(ShardIterator=iterator)["Records"]
        return records

    def shard_id(self) -> str:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)
        return str(description["StreamDescription"]["Shards"][0]["ShardId"])

    def record_failure(
        self,
        records: list[dict[str, Any]],
        condition: str = "RetryAttemptsExhausted",
        last_arrival: datetime | None = None,
    ) -> None:
        """Put Lambda's on-failure record for the batch `records` in the failure queue."""
        arrival = last_arrival or datetime.now(UTC)
        body = {
            "requestContext": {
                "requestId": "c9b2a8f4-0000-4000-8000-000000000000",
                "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}",
                "condition": condition,
                "approximateInvokeCount": 6,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id(),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival.isoformat().replace("+00:00", "Z"),
                "approximateArrivalOfLastRecord": arrival.isoformat().replace("+00:00", "Z"),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def redrive(
        self,
        invoker: Any,
        dry_run: bool = False,
        streams: Any = None,
        later: timedelta = timedelta(0),
        **run: Any,
    ) -> RedriveReport:
        """Run a redrive, `later` than now."""
        return Redrive(
            sqs=self.sqs,
            queue_url=self.queue_url,
            stream=StreamRecords(streams or self.streams),
            table=ImageStatuses(self.dynamodb, TABLE),
            invoker=invoker,
            region=REGION,
            say=self.lines.append,
            dry_run=dry_run,
            now=lambda: datetime.now(UTC) + later,
        ).run(**run)

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def status(self, image_id: str) -> Status:
        return self.service.records.get(TENANT, image_id).status


@pytest.fixture
def world(
    dynamodb_client: Any,
    dynamodb_table: DynamoDBLabelTable,
    s3_store: S3ImageStore,
    tiny_labeller: OnnxLabeller,
) -> World:
    service = wire(
        store=s3_store,
        table=dynamodb_table,
        labeller=tiny_labeller,
        fetcher=NoNetwork(),
        limits=Limits(),
        is_transient=transient.aws_transient,
    )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=FAILURE_QUEUE)["QueueUrl"]
    stream_arn = dynamodb_client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    return World(
        service,
        dynamodb_client,
        boto3.client("dynamodbstreams", region_name=REGION),
        sqs,
        queue_url,
        stream_arn,
        [],
    )


def test_redrive_relabels_the_images_of_a_failed_batch_and_deletes_its_message(
    world: World,
) -> None:
    before = world.submit(2)
    failed = world.submit(3, start=2)
    after = world.submit(1, start=5)
    records = world.stream_records()
    world.record_failure(records[2:5])
    invoker = HandlerInvoker(world.service)
    report = world.redrive(invoker)
    assert invoker.image_ids() == failed  # that batch's images, in stream order
    assert [world.status(image_id) for image_id in failed] == [Status.CLASSIFIED] * 3
    # Nothing outside the batch was touched.
    assert [world.status(i) for i in [*before, *after]] == [Status.NOT_CLASSIFIED] * 3
    assert (len(report.redriven), report.kept, report.relabelled) == (1, {}, failed)
    assert world.queued() == 0


def test_the_labelling_event_is_what_label_new_images_gets_from_the_stream(world: World) -> None:
    world.submit(1)
    world.record_failure(world.stream_records())
    invoker = HandlerInvoker(world.service)
    world.redrive(invoker)
    [event] = invoker.events
    [record] = event["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == world.stream_arn
    assert record["awsRegion"] == REGION
    assert set(record["dynamodb"]) >= {
        "ApproximateCreationDateTime",
        "Keys",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    }


def test_images_finished_meanwhile_are_not_handed_over_again(world: World) -> None:
    images = world.submit(3)
    world.service.labelling.label_images(images[:2])
    world.record_failure(world.stream_records()[:3])
    invoker = HandlerInvoker(world.service)
    report = world.redrive(invoker)
    assert invoker.image_ids() == images[2:]
    assert sorted(report.finished) == sorted(images[:2])
    assert world.queued() == 0


def test_a_poison_record_in_a_redriven_batch_ends_failed_and_the_rest_are_labelled(
    world: World,
) -> None:
    images = world.submit(2)
    world.dynamodb.put_item(
        TableName=TABLE, Item={"Id": {"S": "poison"}, "Status": {"S": "NOT_CLASSIFIED"}}
    )
    world.record_failure(world.stream_records())
    world.redrive(HandlerInvoker(world.service))
    assert [world.status(image_id) for image_id in images] == [Status.CLASSIFIED] * 2
    item = world.dynamodb.get_item(TableName=TABLE, Key={"Id": {"S": "poison"}})["Item"]
    assert item["Status"] == {"S": "FAILED"}
    assert "KeyError" in item["Error"]["S"]
    assert world.queued() == 0


def test_a_message_is_kept_and_visible_again_when_labelling_raises(world: World) -> None:
    images = world.submit(2)
    world.record_failure(world.stream_records())
    report = world.redrive(HandlerInvoker(world.service, fail_first=1))
    [(_, why)] = report.kept.items()
    assert "ThrottlingException" in why
    assert report.redriven == []
    assert world.visible() == 1  # for the alarm, and the next run
    assert [world.status(image_id) for image_id in images] == [Status.NOT_CLASSIFIED] * 2
    # The next run hands them over.
    report = world.redrive(HandlerInvoker(world.service))
    assert (len(report.redriven), world.queued()) == (1, 0)
    assert [world.status(image_id) for image_id in images] == [Status.CLASSIFIED] * 2


def test_a_dry_run_says_what_it_would_relabel_and_changes_nothing(world: World) -> None:
    images = world.submit(2)
    world.record_failure(world.stream_records(), condition="MaxRecordAgeExceeded")
    invoker = HandlerInvoker(world.service)
    report = world.redrive(invoker, dry_run=True)
    assert invoker.events == []
    assert (len(report.redriven), report.relabelled, report.kept) == (1, images, {})
    assert world.visible() == 1  # still there, and visible
    text = "\n".join(world.lines)
    assert "MaxRecordAgeExceeded" in text
    assert f"would relabel 2 image(s): {images[0]}, {images[1]}" in text
    assert "would delete message" in text
    assert [world.status(image_id) for image_id in images] == [Status.NOT_CLASSIFIED] * 2


def test_a_message_that_is_no_failure_record_is_kept(world: World) -> None:
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody="hello")
    report = world.redrive(HandlerInvoker(world.service))
    [(_, why)] = report.kept.items()
    assert why.startswith("not a stream on-failure record")
    assert world.visible() == 1


def expired_streams(world: World) -> Any:
    """A DynamoDB Streams client that answers like AWS for records past 24 hours."""
    client = boto3.client("dynamodbstreams", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_shard_iterator",
        service_error_code="TrimmedDataAccessException",
        service_message="the requested data is beyond the trim horizon",
        http_status_code=400,
    )
    stubber.activate()
    return client


def test_a_batch_whose_records_left_the_stream_is_reported_and_kept(world: World) -> None:
    images = world.submit(1)
    world.record_failure(world.stream_records())
    invoker = HandlerInvoker(world.service)
    report = world.redrive(invoker, streams=expired_streams(world))
    [(_, why)] = report.kept.items()
    assert "left the stream" in why and "--scan-older-than" in why
    assert invoker.events == []
    assert world.visible() == 1
    assert world.status(images[0]) is Status.NOT_CLASSIFIED


def test_the_scan_fallback_relabels_old_pending_images_and_then_drops_expired_messages(
    world: World,
) -> None:
    images = world.submit(2)
    long_ago = datetime.now(UTC) - timedelta(days=2)
    world.record_failure(world.stream_records(), last_arrival=long_ago)
    invoker = HandlerInvoker(world.service)
    # Two hours on, with an hour's cutoff: the images (submitted now) are older than it.
    report = world.redrive(
        invoker,
        streams=expired_streams(world),
        later=timedelta(hours=2),
        scan_older_than=timedelta(hours=1),
    )
    assert sorted(invoker.image_ids()) == sorted(images)
    assert [world.status(image_id) for image_id in images] == [Status.CLASSIFIED] * 2
    assert (report.kept, len(report.redriven), world.queued()) == ({}, 1, 0)


def test_the_scan_fallback_keeps_a_message_newer_than_its_cutoff(world: World) -> None:
    world.submit(1)
    world.record_failure(world.stream_records())  # the batch arrived just now
    report = world.redrive(
        HandlerInvoker(world.service),
        streams=expired_streams(world),
        scan_older_than=timedelta(minutes=30),
    )
    assert len(report.kept) == 1 and world.visible() == 1


# --- the real invoker and the command ---------------------------------------------------------


def test_the_lambda_invoker_calls_the_function_synchronously_with_the_event() -> None:
    client = boto3.client(
        "lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(dict(params))
    )
    event = {"Records": [{"eventName": "INSERT"}]}
    with Stubber(client) as stubber:
        stubber.add_response("invoke", {"StatusCode": 200, "Payload": body(b"null")})
        LambdaInvoker(client, FUNCTION).invoke(event)
        stubber.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": body(b'{"errorType": "ThrottlingException"}'),
            },
        )
        with pytest.raises(InvocationFailed, match="ThrottlingException"):
            LambdaInvoker(client, FUNCTION).invoke(event)
    assert sent[0]["FunctionName"] == FUNCTION
    assert sent[0]["InvocationType"] == "RequestResponse"
    assert json.loads(sent[0]["Payload"]) == event


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_redrive_finds_the_function_the_queue_and_the_table_from_the_stage_settings() -> None:
    stage = load_stage("prod-us-west-2")
    assert cli.function_name(stage) == "imagelabeller-prod-us-west-2-label_new_images"
    assert cli.table_name(stage) == "ImageLabels"
    assert FAILURE_QUEUE == "imagelabeller-labelling-failed"


def test_redrive_runs_against_the_stage_region_and_exits_0_with_an_empty_queue(
    moto: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = load_stage("test")
    boto3.client("sqs", region_name=stage.region).create_queue(QueueName=FAILURE_QUEUE)
    assert cli.main(["test"]) == cli.EXIT_OK
    assert f"redrive stage test in {stage.region}" in capsys.readouterr().out


def test_redrive_exits_3_when_the_stage_region_has_no_failure_queue(moto: None) -> None:
    assert cli.main(["test", "--dry-run"]) == cli.EXIT_AWS_FAILED


@pytest.mark.parametrize("arguments", [["local"], ["nowhere"], ["test", "--scan-older-than", "0"]])
def test_redrive_refuses_with_exit_code_2_before_any_aws_call(arguments: list[str]) -> None:
    assert cli.main(arguments) == cli.EXIT_REFUSED


@pytest.mark.slow  # runs a process
def test_the_script_runs_the_package(tmp_path: Any) -> None:
    done = subprocess.run(
        [str(PROJECT_DIR / "scripts" / "redrive"), "local"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    assert "never deployed" in done.stderr
