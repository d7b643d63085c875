"""What a step does. Each action can describe itself (a dry run prints that, and calls
nothing) or run (boto3 and subprocesses).

Values that exist only once an earlier action ran, such as a stack's output, are
`StackOutput` or `Produced` references: a dry run prints them as placeholders, a real run
resolves them from the `RunContext`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools.deploy import artifacts, calls
from tools.deploy.chalice_stage import configured_for_chalice_deploy
from tools.deploy.cloudformation import DeployError, StackRequest, deploy_stack
from tools.deploy.emulator import Emulator, override_function_settings
from tools.deploy.package_models import ModelInPackage, check_package
from tools.deploy.settings import PROJECT_DIR, relative

Say = Callable[[str], None]
VENV_BIN = Path(sys.executable).parent
MERGE_TEMPLATE = PROJECT_DIR / ".chalice" / "merge-template.json"
# tests/package takes this lock too: Chalice rewrites its cached zip in place.
CHALICE_DEPLOYMENTS_LOCK = PROJECT_DIR / ".chalice" / "deployments" / ".package-tests.lock"
# CloudFormation takes a TemplateBody of at most this many bytes.
TEMPLATE_BODY_LIMIT = 51_200


class RunContext:
    """What a real run shares between its actions: boto3 clients and results so far."""

    def __init__(self, say: Say, emulator: Emulator | None = None) -> None:
        import boto3

        self.say = say
        self.emulator = emulator
        self._session = boto3.session.Session()
        recorder = calls.recorder_from_environment()
        if recorder is not None:  # IMAGELABELLER_DEPLOY_CALL_LOG: tools/deploy/calls.py
            recorder.attach(self._session)
        self._clients: dict[tuple[str, str], Any] = {}
        self.stack_outputs: dict[str, dict[str, str]] = {}
        self.produced: dict[str, str] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            endpoint = self.emulator.endpoint if self.emulator else None
            self._clients[key] = self._session.client(
                service, region_name=region, endpoint_url=endpoint
            )
        return self._clients[key]


@dataclass(frozen=True)
class StackOutput:
    """An output of a stack deployed earlier in the same run."""

    stack: str
    key: str

    def resolve(self, context: RunContext) -> str:
        outputs = context.stack_outputs.get(self.stack, {})
        if self.key not in outputs:
            raise DeployError(f"stack {self.stack} has no output {self.key}: {sorted(outputs)}")
        return outputs[self.key]

    def __str__(self) -> str:
        return f"<output {self.key} of {self.stack}>"


@dataclass(frozen=True)
class Produced:
    """A value an earlier action of the same run made (e.g. an uploaded template's URL)."""

    name: str
    placeholder: str

    def resolve(self, context: RunContext) -> str:
        return context.produced[self.name]

    def __str__(self) -> str:
        return f"<{self.placeholder}>"


Value = str | StackOutput | Produced


def resolve(value: Value, context: RunContext) -> str:
    return value if isinstance(value, str) else value.resolve(context)


def aws_call(service: str, operation: str, region: str, **parameters: object) -> str:
    """One line of a dry run: `aws <service> <Operation> region=<r> Name=value ...`."""
    shown = " ".join(f"{name}={show(value)}" for name, value in parameters.items())
    return f"aws {service} {operation} region={region}" + (f" {shown}" if shown else "")


def show(value: object) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {show(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return str(value) if value != "" else "''"


class Action(Protocol):
    def describe(self) -> list[str]: ...

    def run(self, context: RunContext) -> None: ...


@dataclass(frozen=True)
class TemplateFile:
    path: Path

    def arguments(self, context: RunContext) -> dict[str, str]:
        body = self.path.read_text(encoding="utf-8")
        if len(body.encode("utf-8")) > TEMPLATE_BODY_LIMIT:
            raise DeployError(
                f"{relative(self.path)} is over {TEMPLATE_BODY_LIMIT} bytes, CloudFormation's "
                "limit for TemplateBody; upload it and pass TemplateURL instead"
            )
        return {"TemplateBody": body}

    def shown(self) -> dict[str, str]:
        return {"TemplateBody": f"<{relative(self.path)}>"}


@dataclass(frozen=True)
class InlineTemplate:
    label: str
    body: str

    def arguments(self, context: RunContext) -> dict[str, str]:
        return {"TemplateBody": self.body}

    def shown(self) -> dict[str, str]:
        return {"TemplateBody": f"<{self.label}>"}


@dataclass(frozen=True)
class TemplateAt:
    url: Value

    def arguments(self, context: RunContext) -> dict[str, str]:
        return {"TemplateURL": resolve(self.url, context)}

    def shown(self) -> dict[str, str]:
        return {"TemplateURL": str(self.url)}


Template = TemplateFile | InlineTemplate | TemplateAt


@dataclass(frozen=True)
class CheckIdentity:
    """Who is deploying where: fails fast without credentials, and says it in the log."""

    region: str

    def describe(self) -> list[str]:
        return [aws_call("sts", "GetCallerIdentity", self.region)]

    def run(self, context: RunContext) -> None:
        identity = context.client("sts", self.region).get_caller_identity()
        context.say(f"account {identity['Account']}, as {identity['Arn']}")


@dataclass(frozen=True)
class DeployStack:
    region: str
    stack: str
    template: Template
    capabilities: tuple[str, ...]
    tags: Mapping[str, str]
    parameters: Mapping[str, Value] = field(default_factory=dict)
    # Parameters for the first create only; an update then sets `parameters`.
    on_create: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> list[str]:
        region, stack = self.region, self.stack
        first = (
            [
                f"  (a first create passes {show(dict(self.on_create))}, then an UpdateStack "
                f"sets {show({name: self.parameters[name] for name in self.on_create})})"
            ]
            if self.on_create
            else []
        )
        change = {
            **self.template.shown(),
            "Parameters": dict(self.parameters),
            "Capabilities": list(self.capabilities),
            "Tags": dict(self.tags),
        }
        return [
            aws_call("cloudformation", "DescribeStacks", region, StackName=stack),
            aws_call(
                "cloudformation", "CreateStack|UpdateStack", region, StackName=stack, **change
            ),
            aws_call(
                "cloudformation",
                "wait:stack_create_complete|stack_update_complete",
                region,
                StackName=stack,
            ),
            *first,
            aws_call("cloudformation", "DescribeStacks", region, StackName=stack) + " (outputs)",
        ]

    def run(self, context: RunContext) -> None:
        request = StackRequest(
            name=self.stack,
            template=self.template.arguments(context),
            parameters={name: resolve(value, context) for name, value in self.parameters.items()},
            capabilities=self.capabilities,
            tags=self.tags,
            on_create=self.on_create,
        )
        client = context.client("cloudformation", self.region)
        context.stack_outputs[self.stack] = deploy_stack(client, request, context.say)


@dataclass(frozen=True)
class PackageFunctions:
    """`chalice package` with the merge template: sam.json and deployment.zip, which holds
    no model (the model layer does: tools/deploy/model_layer.py)."""

    stage: str
    region: str
    out_dir: Path

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "chalice"),
            "package",
            "--stage",
            self.stage,
            "--merge-template",
            relative(MERGE_TEMPLATE),
            relative(self.out_dir),
        ]

    def shown_command(self) -> str:
        return " ".join(["chalice", *self.command()[1:]])

    @property
    def zip_path(self) -> Path:
        return self.out_dir / "deployment.zip"

    def describe(self) -> list[str]:
        return [
            f"run AWS_DEFAULT_REGION={self.region} {self.shown_command()} (calls no AWS)",
            f"check {relative(self.zip_path)} holds no model, every file readable by all",
        ]

    def run(self, context: RunContext) -> None:
        refusal = configured_for_chalice_deploy(self.stage)
        if refusal:
            raise DeployError(refusal)
        shutil.rmtree(self.out_dir, ignore_errors=True)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        context.say(f"packaging: {self.shown_command()}")
        environment = {**os.environ, "AWS_DEFAULT_REGION": self.region}
        with chalice_deployments_lock():
            finished = subprocess.run(self.command(), cwd=PROJECT_DIR, env=environment)
        if finished.returncode != 0:
            raise DeployError(f"chalice package exited {finished.returncode}")
        try:
            check_package(self.zip_path)
        except ModelInPackage as error:
            raise DeployError(str(error)) from error
        if context.emulator:
            override_function_settings(self.out_dir / "sam.json")


@dataclass(frozen=True)
class UploadPackage:
    """The zip and the template rewritten to point at it, to the artifacts bucket."""

    stage: str
    region: str
    bucket: Value
    package_dir: Path
    template_url: Produced

    def describe(self) -> list[str]:
        zip_path = relative(self.package_dir / "deployment.zip")
        zip_key = artifacts.function_code_key(f"<sha256 of {zip_path}>")
        template_key = artifacts.template_key(self.stage, "<sha256 of packaged.json>")
        packaged = relative(self.package_dir / "packaged.json")
        return [
            aws_call("s3", "HeadObject", self.region, Bucket=self.bucket, Key=zip_key),
            aws_call("s3", "PutObject", self.region, Bucket=self.bucket, Key=zip_key)
            + " (multipart; only if HeadObject found nothing)",
            f"write {packaged}: sam.json with CodeUri = {{Bucket, Key}} of the zip",
            aws_call("s3", "HeadObject", self.region, Bucket=self.bucket, Key=template_key),
            aws_call("s3", "PutObject", self.region, Bucket=self.bucket, Key=template_key)
            + " (only if HeadObject found nothing)",
        ]

    def run(self, context: RunContext) -> None:
        s3 = context.client("s3", self.region)
        bucket = resolve(self.bucket, context)
        url = artifacts.upload_package(
            s3, bucket, self.region, self.stage, self.package_dir, context.say
        )
        context.produced[self.template_url.name] = url


@contextmanager
def chalice_deployments_lock() -> Iterator[None]:
    CHALICE_DEPLOYMENTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(CHALICE_DEPLOYMENTS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def describe_all(actions: Sequence[Action]) -> list[str]:
    return [line for action in actions for line in action.describe()]
