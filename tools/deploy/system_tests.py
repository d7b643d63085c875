"""The system-tests step: `pytest tests/system/test_api.py` against the deployed API, with
an API key made for this run alone.

Every route but the open ones needs a key (issue 15). The step makes a fresh key of the
tenant `system-tests` in the stage's `ImageLabelIndex` (chalicelib.api_keys, the code
`imagelabeller keys create --stage` runs), hands it to the tests in their environment
only, and revokes it when they end, whatever happened. The key is never printed or
logged; its id, which is public, is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.api_keys import ApiKeys
from chalicelib.domain.api_keys import UnknownApiKey
from chalicelib.domain.models import utc_now
from tools.deploy.actions import RunContext, Value, aws_call, resolve
from tools.deploy.cloudformation import DeployError
from tools.deploy.settings import PROJECT_DIR

SYSTEM_TESTS = "tests/system/test_api.py"
BASE_URL_VARIABLE = "IMAGELABELLER_BASE_URL"
API_KEY_VARIABLE = "IMAGELABELLER_SYSTEM_TEST_API_KEY"
LEGACY_OPEN_VARIABLE = "IMAGELABELLER_SYSTEM_TEST_LEGACY_OPEN"
TENANT = "system-tests"


def key_label(stage: str, at: datetime) -> str:
    """What `imagelabeller keys list` shows for the key: which run made it."""
    return f"system tests of stage {stage}, {at:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class SystemTestKey:
    """Where the system tests' key is made and revoked: the stage's key store."""

    stage: str
    region: str
    table: str  # the stage's ImageLabelIndex

    def describe_create(self) -> str:
        return (
            aws_call("dynamodb", "PutItem", self.region, TableName=self.table)
            + f" (a new API key of tenant {TENANT}, labelled with the stage and the time; "
            "the key goes to the tests' environment only)"
        )

    def describe_revoke(self) -> str:
        return (
            aws_call("dynamodb", "UpdateItem", self.region, TableName=self.table)
            + " (revoke that key, whatever the tests did; GetItem if it was revoked already)"
        )

    def create(self, client: Any, now: Callable[[], datetime] = utc_now) -> tuple[str, str]:
        """A new key: (the key, its id)."""
        from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore

        made_at = now()
        keys = ApiKeys(DynamoDBKeyStore(client, self.table), clock=lambda: made_at)
        issued = keys.create(TENANT, key_label(self.stage, made_at))
        return issued.key, issued.record.key_id

    def revoke(self, client: Any, key_id: str) -> str | None:
        """Revoke the key; None when done, else what went wrong and how to finish it."""
        from botocore.exceptions import BotoCoreError, ClientError

        from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore

        try:
            ApiKeys(DynamoDBKeyStore(client, self.table)).revoke(key_id)
        except (BotoCoreError, ClientError, UnknownApiKey) as error:
            return (
                f"the system tests' API key {key_id} is NOT revoked ({error}); revoke it: "
                f"imagelabeller keys revoke {key_id} --stage {self.stage}"
            )
        return None


@dataclass(frozen=True)
class RunSystemTests:
    """`pytest tests/system/test_api.py` against the deployed API, with a key of its own."""

    base_url: Value
    key: SystemTestKey
    legacy_routes_open: bool  # the stage's IMAGELABELLER_LEGACY_ROUTES_OPEN

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pytest", SYSTEM_TESTS]

    def variables(self, base_url: str, key_shown: str) -> str:
        legacy = "true" if self.legacy_routes_open else "false"
        return (
            f"{BASE_URL_VARIABLE}={base_url} {API_KEY_VARIABLE}={key_shown} "
            f"{LEGACY_OPEN_VARIABLE}={legacy}"
        )

    def describe(self) -> list[str]:
        return [
            self.key.describe_create(),
            f"run {self.variables(str(self.base_url), '<the new key>')} pytest {SYSTEM_TESTS}",
            self.key.describe_revoke(),
        ]

    def run(self, context: RunContext) -> None:
        base_url = resolve(self.base_url, context)
        if context.emulator:
            base_url = context.emulator.api_url(base_url)
        base_url = base_url.rstrip("/")
        client = context.client("dynamodb", self.key.region)
        key, key_id = self.key.create(client)
        context.say(
            f"system tests: made API key {key_id} of tenant {TENANT} in {self.key.table}; "
            "it is revoked when they end"
        )
        failed: str | None = None
        not_revoked: str | None = None
        try:
            failed = self.run_tests(context, base_url, key, key_id)
        finally:
            not_revoked = self.key.revoke(client, key_id)
            context.say(not_revoked or f"system tests: API key {key_id} revoked")
        problems = [problem for problem in (failed, not_revoked) if problem]
        if problems:
            raise DeployError("\n".join(problems))

    def run_tests(self, context: RunContext, base_url: str, key: str, key_id: str) -> str | None:
        """Run them; None when they passed, else what to do about it."""
        shown = self.variables(base_url, f"<key {key_id}>")
        context.say(f"system tests: {shown} pytest {SYSTEM_TESTS}")
        environment = {
            **os.environ,
            BASE_URL_VARIABLE: base_url,
            API_KEY_VARIABLE: key,
            LEGACY_OPEN_VARIABLE: "true" if self.legacy_routes_open else "false",
        }
        finished = subprocess.run(self.command(), cwd=PROJECT_DIR, env=environment)
        if finished.returncode == 0:
            return None
        return (
            f"the system tests failed against {base_url} (pytest exited "
            f"{finished.returncode}). The new functions are live, and the alarms watch them. "
            "Fix forward, or re-deploy the last good commit (docs/DEPLOY.md, Roll back)"
        )
