"""`imagelabeller migrate`: on the local data folder, and on a deployed stage's tables (moto,
with the `test` stage's settings from .chalice/config.json)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.bootstrap import DATABASE_FILE
from imagelabeller_cli.migrate import add_migrate_command
from tests.fixtures.aws import create_label_table
from tests.unit.test_dynamodb_migration import (
    MIGRATED_INDEX,
    MIGRATED_RECORDS,
    index,
    keyed,
    records,
    seed,
)

# The `test` stage of .chalice/config.json.
STAGE = "test"
STAGE_REGION = "us-west-1"


def run(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], *args: str
) -> tuple[int, str, str]:
    """The command as `imagelabeller migrate ARGS...` runs it."""
    parser = argparse.ArgumentParser(prog="imagelabeller")
    add_migrate_command(parser.add_subparsers(required=True))
    parsed = parser.parse_args(["migrate", *args])
    status: int = parsed.run(parsed, env)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    return {"IMAGELABELLER_DATA_DIR": str(tmp_path / "data")}


def test_locally_it_opens_the_database_which_migrates_itself_and_says_so(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, out, _ = run(capsys, local_env)

    database = Path(local_env["IMAGELABELLER_DATA_DIR"]) / DATABASE_FILE
    assert status == 0
    assert database.is_file()
    assert f"{database} is up to date" in out


def test_a_local_dry_run_writes_nothing(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, out, _ = run(capsys, local_env, "--dry-run")

    assert status == 0
    assert "nothing was written" in out
    assert not Path(local_env["IMAGELABELLER_DATA_DIR"]).exists()


def test_an_unknown_stage_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, _, err = run(capsys, local_env, "--stage", "no-such-stage")
    assert status == 2
    assert "unknown stage 'no-such-stage'" in err


@pytest.fixture
def stage_client(moto: None) -> Any:
    """The `test` stage's tables as they were before tenancy, on moto."""
    client = boto3.client("dynamodb", region_name=STAGE_REGION)
    create_label_table(client)
    seed(client)
    return client


@pytest.fixture
def stage_env(moto: None) -> dict[str, str]:
    """The caller's environment on moto: AWS credentials, no IMAGELABELLER_* settings (the
    stage's own come from .chalice/config.json)."""
    return {name: value for name, value in os.environ.items() if "IMAGELABELLER_" not in name}


def test_on_a_stage_it_migrates_its_tables_in_its_region_and_prints_the_counts(
    capsys: pytest.CaptureFixture[str], stage_client: Any, stage_env: dict[str, str]
) -> None:
    status, out, _ = run(capsys, stage_env, "--stage", STAGE)

    assert status == 0
    assert records(stage_client) == {record["Id"]: record for record in MIGRATED_RECORDS}
    assert index(stage_client) == keyed(MIGRATED_INDEX)
    assert "ImageLabels and ImageLabelIndex in us-west-1:" in out
    assert "3  records given the tenant legacy" in out
    assert "2  search entries moved under legacy#" in out
    assert "done: 8 changes" in out


def test_on_a_stage_a_second_run_says_it_is_up_to_date(
    capsys: pytest.CaptureFixture[str], stage_client: Any, stage_env: dict[str, str]
) -> None:
    run(capsys, stage_env, "--stage", STAGE)
    status, out, _ = run(capsys, stage_env, "--stage", STAGE)

    assert status == 0
    assert out.rstrip().endswith("up to date: nothing to change")


def test_on_a_stage_a_dry_run_prints_the_counts_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], stage_client: Any, stage_env: dict[str, str]
) -> None:
    before = records(stage_client), index(stage_client)

    status, out, _ = run(capsys, stage_env, "--stage", STAGE, "--dry-run")

    assert status == 0
    assert (records(stage_client), index(stage_client)) == before
    assert "3  records given the tenant legacy" in out
    assert "dry run: a run would make 8 changes; nothing was written" in out


def test_on_a_stage_without_its_tables_the_command_fails_with_a_message(
    capsys: pytest.CaptureFixture[str], stage_env: dict[str, str]
) -> None:
    status, out, err = run(capsys, stage_env, "--stage", STAGE)

    assert status == 1
    assert out == ""
    assert err.startswith("error: the migration stopped")
    assert "run it again" in err
    assert "Traceback" not in err
