"""The webhook signing key: read from Secrets Manager (moto) at run time, kept a while,
read again after that, and a clear error when it cannot be; never from a Lambda's
environment. The callbacks a deployed stage sends are signed with what the secret holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as powertools_parameters

from chalicelib import bootstrap
from chalicelib.adapters.secrets import FixedKey, SecretsManagerKey, SecretUnavailable
from chalicelib.adapters.webhooks import SIGNATURE_HEADER, WebhookSender, verify
from chalicelib.config import AwsSettings, ConfigError, Settings
from tests.fixtures.aws import REGION

SECRET_NAME = "imagelabeller-webhook-secret"
FIRST_VALUE = "first-value-of-the-webhook-secret"
ROTATED_VALUE = "rotated-value-of-the-webhook-secret"
MAX_AGE = 300
NOW = 1_800_000_000.0


class Clock:
    """The time powertools' parameter cache reads (it calls `datetime.now()`), moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2027, 1, 1, 12, 0, 0)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()

    class MovedDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> MovedDatetime:
            return moved.now  # type: ignore[return-value]

    monkeypatch.setattr(powertools_parameters, "datetime", MovedDatetime)
    return moved


@pytest.fixture
def secrets(moto: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def secret_arn(secrets: Any) -> str:
    return str(secrets.create_secret(Name=SECRET_NAME, SecretString=FIRST_VALUE)["ARN"])


class CountingClient:
    """The real (moto) client; `reads` counts its GetSecretValue calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.reads = 0
        client.meta.events.register(
            "before-call.secrets-manager.GetSecretValue", self._count, unique_id="count-reads"
        )

    def _count(self, **_: Any) -> None:
        self.reads += 1


@pytest.fixture
def counted(secrets: Any) -> CountingClient:
    return CountingClient(secrets)


def test_many_reads_within_the_max_age_call_secrets_manager_once(
    secret_arn: str, counted: CountingClient, clock: Clock
) -> None:
    key = SecretsManagerKey(counted.client, secret_arn, MAX_AGE)
    values = set()
    for _ in range(20):
        values.add(key.current())
        clock.advance(MAX_AGE / 40)
    assert values == {FIRST_VALUE.encode()}
    assert counted.reads == 1


def test_a_rotated_value_is_used_once_the_max_age_has_passed(
    secret_arn: str, counted: CountingClient, clock: Clock
) -> None:
    key = SecretsManagerKey(counted.client, secret_arn, MAX_AGE)
    assert key.current() == FIRST_VALUE.encode()
    counted.client.put_secret_value(SecretId=secret_arn, SecretString=ROTATED_VALUE)

    clock.advance(MAX_AGE - 1)
    assert key.current() == FIRST_VALUE.encode()  # still the kept value
    clock.advance(2)
    assert key.current() == ROTATED_VALUE.encode()
    assert counted.reads == 2


def test_the_secret_can_be_named_by_name_as_well_as_by_arn(secret_arn: str, secrets: Any) -> None:
    assert SecretsManagerKey(secrets, SECRET_NAME).current() == FIRST_VALUE.encode()


def test_a_missing_secret_is_a_clear_error_naming_it(secrets: Any) -> None:
    key = SecretsManagerKey(secrets, SECRET_NAME)
    with pytest.raises(SecretUnavailable) as raised:
        key.current()
    message = str(raised.value)
    assert SECRET_NAME in message and "ResourceNotFoundException" in message


def test_a_failed_read_is_not_kept_the_next_read_tries_again(
    secrets: Any, counted: CountingClient
) -> None:
    key = SecretsManagerKey(counted.client, SECRET_NAME)
    with pytest.raises(SecretUnavailable):
        key.current()
    secrets.create_secret(Name=SECRET_NAME, SecretString=FIRST_VALUE)
    assert key.current() == FIRST_VALUE.encode()
    assert counted.reads == 2


class RecordingPoster:
    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes, Mapping[str, str]]] = []

    def post_json(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        self.posts.append((url, body, dict(headers)))
        return 204


def test_deliveries_are_signed_with_the_value_the_secret_holds_now(
    secret_arn: str, secrets: Any, clock: Clock
) -> None:
    poster = RecordingPoster()
    sender = WebhookSender(
        poster, SecretsManagerKey(secrets, secret_arn, MAX_AGE), clock=lambda: NOW
    )
    sender.deliver("https://receiver.example/hook", {"image_id": "a"})
    secrets.put_secret_value(SecretId=secret_arn, SecretString=ROTATED_VALUE)
    clock.advance(MAX_AGE + 1)
    sender.deliver("https://receiver.example/hook", {"image_id": "b"})

    (_, first_body, first_headers), (_, second_body, second_headers) = poster.posts
    first, second = first_headers[SIGNATURE_HEADER], second_headers[SIGNATURE_HEADER]
    assert verify(FIRST_VALUE.encode(), first, first_body, now=NOW)
    assert verify(ROTATED_VALUE.encode(), second, second_body, now=NOW)
    assert not verify(FIRST_VALUE.encode(), second, second_body, now=NOW)


def test_nothing_is_sent_while_the_secret_cannot_be_read(secrets: Any) -> None:
    poster = RecordingPoster()
    sender = WebhookSender(poster, SecretsManagerKey(secrets, SECRET_NAME))
    with pytest.raises(SecretUnavailable):
        sender.deliver("https://receiver.example/hook", {"image_id": "a"})
    assert poster.posts == []


# --- settings and wiring ----------------------------------------------------------------


def test_a_deployed_function_is_told_the_secret_arn_and_its_max_age() -> None:
    settings = Settings.from_environ(
        {
            "IMAGELABELLER_WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-west-2:1:secret:x",
            "IMAGELABELLER_WEBHOOK_SECRET_MAX_AGE": "60",
            "AWS_LAMBDA_FUNCTION_NAME": "imagelabeller-test-deliver_callbacks",
        }
    )
    assert settings.webhook_secret == ""
    assert settings.aws.webhook_secret_arn == "arn:aws:secretsmanager:us-west-2:1:secret:x"
    assert settings.aws.webhook_secret_max_age == 60
    assert Settings.from_environ({}).aws.webhook_secret_max_age == MAX_AGE


def test_a_secret_in_a_lambda_functions_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="IMAGELABELLER_WEBHOOK_SECRET_ARN"):
        Settings.from_environ(
            {
                "IMAGELABELLER_WEBHOOK_SECRET": "in-plain-text",
                "AWS_LAMBDA_FUNCTION_NAME": "imagelabeller-test-deliver_callbacks",
            }
        )
    # Local mode keeps its key in the stage's environment.
    assert Settings.from_environ({"IMAGELABELLER_WEBHOOK_SECRET": "local"}).webhook_secret


def test_the_composition_root_picks_the_key_each_stage_configures(secret_arn: str) -> None:
    local = bootstrap._signing_key(Settings(webhook_secret="local-development-secret"))
    assert isinstance(local, FixedKey) and local.current() == b"local-development-secret"

    aws = AwsSettings(region=REGION, webhook_secret_arn=secret_arn)
    deployed = bootstrap._signing_key(Settings(backend="aws", aws=aws))
    assert isinstance(deployed, SecretsManagerKey) and deployed.secret_id == secret_arn
    assert deployed.current() == FIRST_VALUE.encode()

    assert bootstrap._signing_key(Settings(backend="aws", aws=AwsSettings())) is None
