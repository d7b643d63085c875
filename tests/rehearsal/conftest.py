"""The rehearsal's shared parts: one MiniStack, one first deploy, and the API keys of the
calls the tests make to the deployed API, for the whole folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.api_keys import ApiKeys
from tests.rehearsal.local_aws import CREDENTIALS, ROOT, MiniStack, scratch_folder
from tests.support import PHOTO_FILES, LoopbackServer, loopback_server, photo_png
from tests.system.access_table import Keys
from tools.deploy.settings import load_stage

STAGE = "test"
SETTINGS = load_stage(STAGE)
# Every stack of the stage but the SageMaker endpoint's (it labels with ONNX in Lambda).
STACKS = tuple(stack.name for key, stack in SETTINGS.stacks.items() if key != "sagemaker")
DEPLOY_SECONDS = 900


@dataclass(frozen=True)
class Deployed:
    output: str
    exit_code: int
    call_log: Path


@pytest.fixture(scope="session")
def emulator() -> Iterator[MiniStack]:
    folder = scratch_folder()
    server = MiniStack(folder).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def photos() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        for name, file_name in PHOTO_FILES.items():
            server.serve(f"/{file_name}", photo_png(name))
        yield server


def emulator_credentials() -> dict[str, str]:
    """This process's environment without its AWS and ImageLabeller settings, and with the
    emulator's credentials: nothing of the machine's own setup can reach the commands."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "IMAGELABELLER_"))
    }
    return {**environment, **CREDENTIALS}


def deploy_environment(
    emulator: MiniStack, photos: LoopbackServer, call_log: Path
) -> dict[str, str]:
    return {
        **emulator_credentials(),
        "IMAGELABELLER_DEPLOY_EMULATOR": emulator.endpoint,
        "IMAGELABELLER_PHOTO_BASE_URL": photos.url("").rstrip("/"),
        "IMAGELABELLER_DEPLOY_CALL_LOG": str(call_log),
    }


def run_deploy(emulator: MiniStack, photos: LoopbackServer, name: str) -> Deployed:
    call_log = emulator.folder / f"{name}-calls.jsonl"
    finished = subprocess.run(
        [sys.executable, "-m", "tools.deploy", STAGE],
        cwd=ROOT,
        env=deploy_environment(emulator, photos, call_log),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=DEPLOY_SECONDS,
    )
    return Deployed(finished.stdout, finished.returncode, call_log)


@pytest.fixture(scope="session")
def first_deploy(emulator: MiniStack, photos: LoopbackServer) -> Deployed:
    deployed = run_deploy(emulator, photos, "first")
    assert deployed.exit_code == 0, deployed.output[-6000:] + emulator.log_tail()
    return deployed


def api_keys(emulator: MiniStack) -> ApiKeys:
    """The deployed stage's keys, in the emulator's DynamoDB (as `imagelabeller keys
    --stage test` reaches them on AWS)."""
    return ApiKeys(DynamoDBKeyStore(emulator.client("dynamodb"), SETTINGS.label_index_table))


@pytest.fixture(scope="session")
def keys(emulator: MiniStack, first_deploy: Deployed) -> Keys:
    """Keys of the deployed stage: the tenant `owner`'s (which the rehearsal's own calls
    send), the tenant `intruder`'s, and one of `owner`'s that is revoked."""
    store = api_keys(emulator)
    own = store.create("owner", "rehearsal: the owner's calls").key
    other = store.create("intruder", "rehearsal: another tenant").key
    revoked = store.create("owner", "rehearsal: revoked before use")
    store.revoke(revoked.record.key_id)
    return Keys(own=own, other=other, revoked=revoked.key)


def outputs(emulator: MiniStack, stack: str) -> dict[str, str]:
    cloudformation: Any = emulator.client("cloudformation")
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def api_base_url(deployed: Deployed) -> str:
    """The API's emulator URL, as the deploy gave it to the system tests."""
    match = re.search(r"IMAGELABELLER_BASE_URL=(\S+)", deployed.output)
    assert match, deployed.output[-3000:]
    return match.group(1).rstrip("/")


# The modules share one emulator and one deploy; chalice deploy replaces the app stack, so
# it comes last.
MODULE_ORDER = (
    "test_first_deploy.py",
    "test_stream_failures.py",
    "test_api_keys.py",
    "test_chalice_deploy.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Reorder this folder's tests among themselves; every other test keeps its place."""
    here = Path(__file__).parent
    places = [index for index, item in enumerate(items) if item.path.parent == here]

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else -1

    ordered = sorted((items[index] for index in places), key=rank)
    for index, item in zip(places, ordered, strict=True):
        items[index] = item


def alarmed_functions_missing(emulator: MiniStack) -> list[str]:
    """The functions the deployed alarms watch (FunctionName dimensions) that do not exist."""
    cloudwatch: Any = emulator.client("cloudwatch")
    functions: Any = emulator.client("lambda")
    existing = {item["FunctionName"] for item in functions.list_functions()["Functions"]}
    watched = {
        dimension["Value"]
        for alarm in cloudwatch.describe_alarms()["MetricAlarms"]
        for dimension in alarm.get("Dimensions", [])
        if dimension["Name"] == "FunctionName"
    }
    return sorted(watched - existing)
