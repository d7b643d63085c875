"""`scripts/redrive <stage> [--dry-run] [--scan-older-than MINUTES]`

Relabels the images of the stream batches labelling gave up on, which the stage region's
failure queue imagelabeller-labelling-failed records (docs/AWS.md, Stream failures).

Exit codes: 0 every message was handled (deleted) or there was none; with --dry-run,
nothing would be kept. 1 some messages were kept (their records left the stream, labelling
raised again, or a message is not an on-failure record): the output says which and why.
2 refused before any AWS call (a local or unknown stage). 3 an AWS call failed (no
credentials, no queue, access denied).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta

from tools.deploy.settings import (
    CHALICE_CONFIG,
    StageRefused,
    StageSettings,
    deployed_stage_names,
    load_stage,
    read_json,
)
from tools.redrive.invoker import LambdaInvoker
from tools.redrive.redrive import FAILURE_QUEUE, Redrive, RedriveReport
from tools.redrive.stream import StreamRecords
from tools.redrive.table import ImageStatuses

EXIT_OK = 0
EXIT_KEPT = 1
EXIT_REFUSED = 2
EXIT_AWS_FAILED = 3
DEFAULT_TABLE = "ImageLabels"
LABELLING_FUNCTION = "label_new_images"
# The labelling function may run 900 s (SageMaker stages); wait a little longer, and
# never send an invocation twice on a timeout.
INVOKE_READ_TIMEOUT = 960


def say(line: str) -> None:
    print(line, flush=True)


def complain(line: str) -> None:
    print(f"redrive: {line}", file=sys.stderr, flush=True)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/redrive",
        description=(
            f"Relabel the images of the stream batches recorded in {FAILURE_QUEUE} (the "
            "stage's region): read each batch's records back from the table's stream and "
            "invoke the stage's labelling function with the images still NOT_CLASSIFIED. "
            "A message is deleted once its images were handed over."
        ),
    )
    parser.add_argument("stage", help=f"one of: {', '.join(safe_stage_names())}")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the queue, the stream and the table, and say what would be relabelled; "
        "invoke nothing, delete nothing",
    )
    parser.add_argument(
        "--scan-older-than",
        type=int,
        metavar="MINUTES",
        help="also relabel every image NOT_CLASSIFIED for longer than this (a table scan), "
        "and then delete the messages whose records left the stream if their batch is "
        "older: the fallback once the stream's 24 hours have passed",
    )
    return parser.parse_args(argv)


def safe_stage_names() -> list[str]:
    try:
        return deployed_stage_names()
    except StageRefused:
        return ["(cannot read .chalice/config.json)"]


def table_name(stage: StageSettings) -> str:
    variables = read_json(CHALICE_CONFIG)["stages"][stage.name].get("environment_variables", {})
    return str(variables.get("IMAGELABELLER_TABLE", DEFAULT_TABLE))


def function_name(stage: StageSettings) -> str:
    return f"{stage.stack('app').name}-{LABELLING_FUNCTION}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.scan_older_than is not None and arguments.scan_older_than < 1:
        complain("refused: --scan-older-than takes a number of minutes, at least 1")
        return EXIT_REFUSED
    try:
        stage = load_stage(arguments.stage)
    except StageRefused as refusal:
        complain(f"refused: {refusal}")
        return EXIT_REFUSED
    return run(stage, arguments.dry_run, arguments.scan_older_than)


def run(stage: StageSettings, dry_run: bool, scan_minutes: int | None) -> int:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    say(
        f"redrive stage {stage.name} in {stage.region}: {FAILURE_QUEUE} -> "
        f"{function_name(stage)}" + (" (dry run: nothing is invoked or deleted)" if dry_run else "")
    )
    try:
        sqs = boto3.client("sqs", region_name=stage.region)
        lambda_client = boto3.client(
            "lambda",
            region_name=stage.region,
            config=Config(read_timeout=INVOKE_READ_TIMEOUT, retries={"total_max_attempts": 1}),
        )
        redrive = Redrive(
            sqs=sqs,
            queue_url=sqs.get_queue_url(QueueName=FAILURE_QUEUE)["QueueUrl"],
            stream=StreamRecords(boto3.client("dynamodbstreams", region_name=stage.region)),
            table=ImageStatuses(
                boto3.client("dynamodb", region_name=stage.region), table_name(stage)
            ),
            invoker=LambdaInvoker(lambda_client, function_name(stage)),
            region=stage.region,
            say=say,
            dry_run=dry_run,
        )
        scan = timedelta(minutes=scan_minutes) if scan_minutes is not None else None
        report = redrive.run(scan)
    except (BotoCoreError, ClientError) as failure:
        complain(f"an AWS call failed: {failure}")
        return EXIT_AWS_FAILED
    return summarise(report, dry_run)


def summarise(report: RedriveReport, dry_run: bool) -> int:
    messages, images = (
        ("would be deleted", "would be relabelled") if dry_run else ("deleted", "relabelled")
    )
    say(
        f"done: {len(report.redriven)} message(s) {messages}, {len(report.relabelled)} "
        f"image(s) {images}, {len(report.finished)} already finished, {len(report.kept)} "
        "message(s) kept"
    )
    for message_id, why in report.kept.items():
        complain(f"kept {message_id}: {why}")
    return EXIT_KEPT if report.kept else EXIT_OK
