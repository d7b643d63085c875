"""`scripts/deploy <stage> [--dry-run] [--only STEP[,STEP...]]`

Exit codes: 0 deployed (or the dry run printed); 1 a step failed; 2 refused before any
AWS call (a local or unknown stage, or settings to fix first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.deploy.actions import RunContext, describe_all
from tools.deploy.cloudformation import DeployError
from tools.deploy.emulator import Emulator, emulator_from
from tools.deploy.plan import (
    APP_URL_OUTPUT,
    STEP_ORDER,
    Step,
    build_plan,
    preflight,
    readiness_problems,
    select_steps,
)
from tools.deploy.settings import StageRefused, StageSettings, deployed_stage_names, load_stage

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


def say(line: str) -> None:
    print(line, flush=True)


def complain(line: str) -> None:
    print(f"deploy: {line}", file=sys.stderr, flush=True)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/deploy",
        description=(
            "Deploy one stage end to end: the SageMaker endpoint (sagemaker stages), the "
            "bucket, the table, the functions, the alarms, the system tests "
            "(docs/DEPLOY.md)."
        ),
    )
    parser.add_argument("stage", help=f"one of: {', '.join(safe_stage_names())}")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print each step and each AWS call it would make; call nothing",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="STEP[,STEP...]",
        help=f"run only these steps, in the usual order ({', '.join(STEP_ORDER)})",
    )
    return parser.parse_args(argv)


def safe_stage_names() -> list[str]:
    try:
        return deployed_stage_names()
    except StageRefused:
        return ["(cannot read .chalice/config.json)"]


def requested_steps(only: Sequence[str] | None) -> list[str] | None:
    if not only:
        return None
    return [name.strip() for value in only for name in value.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        stage = load_stage(arguments.stage)
        emulator = emulator_from()
        if emulator:
            stage = emulator.stage_settings(stage)
        steps = select_steps(build_plan(stage, emulator=emulator), requested_steps(arguments.only))
    except StageRefused as refusal:
        complain(f"refused: {refusal}")
        return EXIT_REFUSED
    problems = readiness_problems(stage, steps)
    if arguments.dry_run:
        print_dry_run(stage, steps, problems)
        return EXIT_OK
    if problems:
        complain("refused; fix these first (nothing was deployed):")
        for problem in problems:
            complain(f"  - {problem}")
        return EXIT_REFUSED
    return deploy(stage, steps, emulator)


def headline(stage: StageSettings) -> str:
    return (
        f"deploy stage {stage.name} to {stage.region}, labeller {stage.labeller} "
        "(.chalice/config.json)"
    )


def print_dry_run(stage: StageSettings, steps: Sequence[Step], problems: Sequence[str]) -> None:
    say(f"{headline(stage)}: dry run, no AWS call is made")
    if not stage.uses_sagemaker:
        say("no sagemaker step: this stage labels with onnx inside Lambda")
    say(f"first: {describe_all([preflight(stage)])[0]}")
    for number, step in enumerate(steps, start=1):
        say(f"step {number}/{len(steps)} {step.name}: {step.summary}")
        for line in describe_all(step.actions):
            say(f"  {line}")
    if problems:
        say("a real deploy would refuse to start until these are fixed:")
        for problem in problems:
            say(f"  - {problem}")
    say("dry run done: nothing was called, packaged or deployed")


def deploy(stage: StageSettings, steps: Sequence[Step], emulator: Emulator | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    say(headline(stage))
    for change in emulator.changes() if emulator else []:
        say(f"  emulator: {change}")
    where = "the identity check (sts GetCallerIdentity)"
    try:
        context = RunContext(lambda line: say(f"  {line}"), emulator)
        preflight(stage).run(context)
        for number, step in enumerate(steps, start=1):
            where = f"step {number}/{len(steps)} {step.name}"
            say(f"{where}: {step.summary}")
            for action in step.actions:
                action.run(context)
    except NoCredentialsError:
        complain(
            f"{where} failed: no AWS credentials (a profile, AWS_* variables, or the "
            "pipeline's OIDC role; docs/DEPLOY.md)"
        )
        return EXIT_FAILED
    except (DeployError, BotoCoreError, ClientError) as failure:
        complain(f"{where} failed:\n{failure}")
        return EXIT_FAILED
    app_outputs = context.stack_outputs.get(stage.stack("app").name, {})
    url = app_outputs.get(APP_URL_OUTPUT)
    say(f"deployed {stage.name} in {stage.region}" + (f": {url}" if url else ""))
    return EXIT_OK
