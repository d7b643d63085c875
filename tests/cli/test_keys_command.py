"""`imagelabeller keys create|list|revoke`: on the local data folder (in process, and once
as a user runs it), and on a deployed stage's table (moto, with the `test` stage's
settings from .chalice/config.json)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.api_keys import ApiKeys
from chalicelib.bootstrap import api_keys_for
from chalicelib.config import Settings
from chalicelib.domain.api_keys import Principal, parse_key
from imagelabeller_cli.main import main
from tests.cli.support import run_cli
from tests.fixtures.aws import LABEL_INDEX_TABLE, create_label_table

KEY_LINE = re.compile(r"^key: +(\S+)$", re.MULTILINE)
KEY_ID_LINE = re.compile(r"^key id: +([0-9a-f]{16})$", re.MULTILINE)
# The `test` stage of .chalice/config.json.
STAGE = "test"
STAGE_REGION = "us-west-1"


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    return {"IMAGELABELLER_DATA_DIR": str(tmp_path / "data")}


def local_keys(env: dict[str, str]) -> ApiKeys:
    return api_keys_for(Settings.from_environ(env))


def created_key(output: str) -> tuple[str, str]:
    """The key and key id that `keys create` printed."""
    key, key_id = KEY_LINE.search(output), KEY_ID_LINE.search(output)
    assert key and key_id, f"no key in {output!r}"
    return key[1], key_id[1]


def run(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], *args: str
) -> tuple[int, str, str]:
    status = main(["keys", *args], environ=env)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_create_prints_a_working_key_once_and_warns_it_cannot_be_shown_again(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, out, err = run(capsys, local_env, "create", "--tenant", "acme", "--label", "CI")

    assert status == 0
    key, key_id = created_key(out)
    assert "cannot be shown again" in err
    assert local_keys(local_env).authenticate(key) == Principal(key_id, "acme")


def test_list_shows_ids_tenants_and_dates_never_keys_or_hashes(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    _, out, _ = run(capsys, local_env, "create", "--tenant", "acme", "--label", "laptop")
    key, key_id = created_key(out)
    run(capsys, local_env, "create", "--tenant", "globex")
    stored = local_keys(local_env).list("acme")[0]

    status, table, _ = run(capsys, local_env, "list")
    _, listed_json, _ = run(capsys, local_env, "list", "--tenant", "acme", "--json")

    assert status == 0
    lines = table.splitlines()
    assert lines[0].split() == ["KEY", "ID", "TENANT", "CREATED", "REVOKED", "LABEL"]
    assert len(lines) == 3
    assert any(line.split()[:2] == [key_id, "acme"] and "laptop" in line for line in lines)
    entries = json.loads(listed_json)
    assert [(entry["key_id"], entry["tenant"]) for entry in entries] == [(key_id, "acme")]
    secret = key.split("_", 2)[2]
    for printed in (table, listed_json):
        assert secret not in printed
        assert stored.secret_hash not in printed


def test_a_revoked_key_no_longer_authenticates_and_is_listed_revoked(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    _, out, _ = run(capsys, local_env, "create", "--tenant", "acme")
    key, key_id = created_key(out)

    status, revoked, _ = run(capsys, local_env, "revoke", key_id)
    again, _, _ = run(capsys, local_env, "revoke", key_id)
    _, listed, _ = run(capsys, local_env, "list", "--json")

    assert (status, again) == (0, 0)
    assert f"revoked {key_id}" in revoked
    assert local_keys(local_env).authenticate(key) is None
    assert json.loads(listed)[0]["revoked_at"] is not None


def test_revoking_an_unknown_key_fails(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, _, err = run(capsys, local_env, "revoke", "0123456789abcdef")
    assert status == 1
    assert "no API key has the id '0123456789abcdef'" in err


@pytest.mark.parametrize("tenant", ["legacy", "Not A Tenant"])
def test_no_key_is_made_for_a_reserved_or_malformed_tenant(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str], tenant: str
) -> None:
    status, out, err = run(capsys, local_env, "create", "--tenant", tenant)

    assert status == 2
    assert out == ""
    assert err.startswith("error: tenant")
    assert local_keys(local_env).list() == []


def test_an_unknown_stage_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], local_env: dict[str, str]
) -> None:
    status, _, err = run(capsys, local_env, "list", "--stage", "no-such-stage")
    assert status == 2
    assert "unknown stage 'no-such-stage'" in err


@pytest.mark.slow
def test_the_installed_command_creates_lists_and_revokes_in_the_data_folder(
    local_env: dict[str, str],
) -> None:
    created = run_cli("keys", "create", "--tenant", "acme", env=local_env)
    assert created.returncode == 0, created.stderr
    key, key_id = created_key(created.stdout)

    listed = run_cli("keys", "list", "--tenant", "acme", env=local_env)
    revoked = run_cli("keys", "revoke", key_id, env=local_env)

    assert listed.returncode == 0 and key_id in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout
    assert revoked.returncode == 0, revoked.stderr
    assert local_keys(local_env).authenticate(key) is None


@pytest.fixture
def stage_env(moto: None) -> dict[str, str]:
    """The caller's environment on moto: AWS credentials, no IMAGELABELLER_* settings (the
    stage's own come from .chalice/config.json)."""
    create_label_table(boto3.client("dynamodb", region_name=STAGE_REGION))
    return {name: value for name, value in os.environ.items() if "IMAGELABELLER_" not in name}


def stage_store() -> DynamoDBKeyStore:
    client = boto3.client("dynamodb", region_name=STAGE_REGION)
    return DynamoDBKeyStore(client, LABEL_INDEX_TABLE)


def stored_items() -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=STAGE_REGION)
    return list(client.scan(TableName=LABEL_INDEX_TABLE)["Items"])


def test_on_a_stage_keys_go_to_its_table_in_its_region_as_hashes(
    capsys: pytest.CaptureFixture[str], stage_env: dict[str, str]
) -> None:
    status, out, _ = run(capsys, stage_env, "create", "--tenant", "acme", "--stage", STAGE)

    assert status == 0
    key, key_id = created_key(out)
    presented = parse_key(key)
    assert presented is not None
    assert ApiKeys(stage_store()).authenticate(key) == Principal(key_id, "acme")
    assert presented.secret not in json.dumps(stored_items())


def test_on_a_stage_list_and_revoke_work_on_its_table(
    capsys: pytest.CaptureFixture[str], stage_env: dict[str, str]
) -> None:
    _, out, _ = run(capsys, stage_env, "create", "--tenant", "acme", "--stage", STAGE)
    key, key_id = created_key(out)

    _, listed, _ = run(capsys, stage_env, "list", "--stage", STAGE, "--json")
    status, _, _ = run(capsys, stage_env, "revoke", key_id, "--stage", STAGE)

    assert [entry["key_id"] for entry in json.loads(listed)] == [key_id]
    assert status == 0
    assert ApiKeys(stage_store()).authenticate(key) is None


def test_on_a_stage_without_its_table_the_command_fails_with_a_message(
    capsys: pytest.CaptureFixture[str], moto: None
) -> None:
    env = {name: value for name, value in os.environ.items() if "IMAGELABELLER_" not in name}

    status, out, err = run(capsys, env, "create", "--tenant", "acme", "--stage", STAGE)

    assert status == 1
    assert out == ""
    assert err.startswith("error: the key store failed")
    assert "Traceback" not in err
