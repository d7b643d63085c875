"""The system-tests step makes a key for the tests, hands it to them only, and revokes it
whatever they did (tools/deploy/system_tests.py), on moto's DynamoDB in process."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.api_keys import ApiKeys
from chalicelib.domain.api_keys import ApiKeyRecord
from tests.fixtures.aws import LABEL_INDEX_TABLE, REGION
from tools.deploy.actions import RunContext, StackOutput
from tools.deploy.cloudformation import DeployError
from tools.deploy.plan import build_plan
from tools.deploy.settings import CHALICE_CONFIG, deployed_stage_names, load_stage
from tools.deploy.system_tests import (
    API_KEY_VARIABLE,
    BASE_URL_VARIABLE,
    LEGACY_OPEN_VARIABLE,
    RunSystemTests,
    SystemTestKey,
)

BASE_URL = "https://api.example/api"
# What the stand-in for pytest writes: the variables the step gave it.
SEEN_VARIABLES = (BASE_URL_VARIABLE, API_KEY_VARIABLE, LEGACY_OPEN_VARIABLE)


@dataclass(frozen=True)
class StandInTests(RunSystemTests):
    """The step with pytest replaced by a process that writes the variables it was given
    to `seen` and exits with `exit_code`."""

    seen: Path = Path("seen.json")
    exit_code: int = 0

    def command(self) -> list[str]:
        script = (
            "import json, os, sys\n"
            f"seen = {{name: os.environ.get(name) for name in {list(SEEN_VARIABLES)!r}}}\n"
            f"open({str(self.seen)!r}, 'w').write(json.dumps(seen))\n"
            f"sys.exit({self.exit_code})\n"
        )
        return [sys.executable, "-c", script]


def stand_in(seen: Path, exit_code: int = 0, legacy_open: bool = True) -> StandInTests:
    key = SystemTestKey("test", REGION, LABEL_INDEX_TABLE)
    return StandInTests(BASE_URL, key, legacy_open, seen=seen, exit_code=exit_code)


def keys_of_the_system_tests(client: Any) -> list[ApiKeyRecord]:
    return ApiKeys(DynamoDBKeyStore(client, LABEL_INDEX_TABLE)).list("system-tests")


def test_the_tests_get_a_fresh_key_of_their_own_which_is_revoked_once_they_pass(
    dynamodb_client: Any, tmp_path: Path
) -> None:
    said: list[str] = []
    seen = tmp_path / "seen.json"

    stand_in(seen).run(RunContext(said.append))

    given = json.loads(seen.read_text())
    assert given[BASE_URL_VARIABLE] == BASE_URL
    assert given[LEGACY_OPEN_VARIABLE] == "true"
    key = given[API_KEY_VARIABLE]
    [record] = keys_of_the_system_tests(dynamodb_client)
    assert key.startswith(f"ilk_{record.key_id}_")
    assert record.label is not None and record.label.startswith("system tests of stage test, ")
    assert record.revoked
    assert ApiKeys(DynamoDBKeyStore(dynamodb_client, LABEL_INDEX_TABLE)).authenticate(key) is None
    output = "\n".join(said)
    assert record.key_id in output and f"API key {record.key_id} revoked" in output
    assert key not in output
    assert key.split("_", 2)[2] not in output


def test_the_key_is_revoked_when_the_tests_fail_and_the_failure_says_the_alarms_watch(
    dynamodb_client: Any, tmp_path: Path
) -> None:
    with pytest.raises(DeployError) as failure:
        stand_in(tmp_path / "seen.json", exit_code=3).run(RunContext(lambda line: None))

    message = str(failure.value)
    assert "pytest exited 3" in message
    assert "the alarms watch them" in message
    [record] = keys_of_the_system_tests(dynamodb_client)
    assert record.revoked


def test_the_tests_are_told_whether_the_stage_keeps_the_legacy_routes_open(
    dynamodb_client: Any, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.json"
    stand_in(seen, legacy_open=False).run(RunContext(lambda line: None))
    assert json.loads(seen.read_text())[LEGACY_OPEN_VARIABLE] == "false"


@dataclass(frozen=True)
class TableGoneDuringTheTests(RunSystemTests):
    """The key cannot be revoked: its table is gone by the time the tests end."""

    client: Any = None

    def run_tests(self, context: RunContext, base_url: str, key: str, key_id: str) -> str | None:
        self.client.delete_table(TableName=LABEL_INDEX_TABLE)
        return None


def test_a_key_that_could_not_be_revoked_fails_the_step_naming_the_command_that_revokes_it(
    dynamodb_client: Any,
) -> None:
    key = SystemTestKey("test", REGION, LABEL_INDEX_TABLE)
    step = TableGoneDuringTheTests(BASE_URL, key, True, client=dynamodb_client)
    said: list[str] = []

    with pytest.raises(DeployError) as failure:
        step.run(RunContext(said.append))

    message = str(failure.value)
    assert "is NOT revoked" in message
    assert "imagelabeller keys revoke " in message and " --stage test" in message
    assert "ilk_" not in message + "\n".join(said)


def test_no_key_is_made_when_the_api_url_is_unknown(dynamodb_client: Any) -> None:
    key = SystemTestKey("test", REGION, LABEL_INDEX_TABLE)
    step = RunSystemTests(StackOutput("imagelabeller-test", "EndpointURL"), key, True)

    with pytest.raises(DeployError, match="has no output EndpointURL"):
        step.run(RunContext(lambda line: None))  # the app stack was not deployed in this run

    assert keys_of_the_system_tests(dynamodb_client) == []


@pytest.mark.parametrize("stage", deployed_stage_names())
def test_each_stage_gives_its_tests_its_own_legacy_routes_setting_and_key_table(
    stage: str,
) -> None:
    settings = load_stage(stage)
    [step] = [step for step in build_plan(settings) if step.name == "system-tests"]
    [action] = step.actions
    assert isinstance(action, RunSystemTests)
    variables = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))["stages"][stage][
        "environment_variables"
    ]
    assert action.legacy_routes_open is (variables["IMAGELABELLER_LEGACY_ROUTES_OPEN"] == "true")
    assert action.key == SystemTestKey(
        stage, settings.region, variables["IMAGELABELLER_LABEL_INDEX_TABLE"]
    )
