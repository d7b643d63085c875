from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import (
    DEFAULT_MODEL_PATH,
    MODELS_DIR,
    PLACEHOLDER_STREAM_ARN,
    ConfigError,
    Settings,
    running_under_chalice_local,
    stream_arn,
)


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_environ({})
    assert (settings.backend, settings.labeller, settings.allow_private_urls) == (
        "local",
        "onnx",
        False,
    )
    assert settings.model == "efficientnet-lite0"
    assert settings.model_path == DEFAULT_MODEL_PATH == MODELS_DIR / "efficientnet-lite0.onnx"
    assert settings.limits.max_image_bytes == 10 * 1024 * 1024
    assert settings.limits.fetch_max_redirects == 3


def test_every_variable_is_read() -> None:
    settings = Settings.from_environ(
        {
            "IMAGELABELLER_BACKEND": "local",
            "IMAGELABELLER_LABELLER": "ONNX",
            "IMAGELABELLER_DATA_DIR": "/tmp/somewhere",
            "IMAGELABELLER_ALLOW_PRIVATE_URLS": "true",
            "IMAGELABELLER_MAX_IMAGE_BYTES": "1000",
            "IMAGELABELLER_MAX_IMAGE_PIXELS": "2000",
            "IMAGELABELLER_FETCH_CONNECT_TIMEOUT": "0.5",
            "IMAGELABELLER_FETCH_TOTAL_TIMEOUT": "4",
            "IMAGELABELLER_FETCH_MAX_REDIRECTS": "0",
            "IMAGELABELLER_TOP_K": "3",
            "IMAGELABELLER_LABEL_MAX_ATTEMPTS": "7",
            "IMAGELABELLER_STREAM_BATCH_SIZE": "32",
            "IMAGELABELLER_STREAM_POLL_SECONDS": "0.5",
            "IMAGELABELLER_LOCAL_STREAM": "false",
        }
    )
    assert settings.data_dir == Path("/tmp/somewhere")
    assert settings.allow_private_urls and not settings.local_stream
    assert (settings.limits.max_image_bytes, settings.limits.max_image_pixels) == (1000, 2000)
    assert (settings.limits.fetch_connect_timeout, settings.limits.fetch_total_timeout) == (0.5, 4)
    assert settings.limits.fetch_max_redirects == 0
    assert (settings.top_k, settings.label_max_attempts) == (3, 7)
    assert (settings.stream_batch_size, settings.stream_poll_seconds) == (32, 0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKEND", "mysql"),
        ("LABELLER", "gpt"),
        ("MODEL", "efficientnet-lite1"),
        ("ALLOW_PRIVATE_URLS", "maybe"),
        ("MAX_IMAGE_BYTES", "lots"),
        ("MAX_IMAGE_BYTES", "0"),
        ("FETCH_TOTAL_TIMEOUT", "-1"),
    ],
)
def test_unusable_values_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"IMAGELABELLER_{name}"):
        Settings.from_environ({f"IMAGELABELLER_{name}": value})


def test_model_chooses_its_own_file_unless_a_path_is_given() -> None:
    lite2 = Settings.from_environ({"IMAGELABELLER_MODEL": "EfficientNet-Lite2"})
    assert lite2.model == "efficientnet-lite2"
    assert lite2.model_path == MODELS_DIR / "efficientnet-lite2.onnx"
    chosen = Settings.from_environ(
        {"IMAGELABELLER_MODEL": "efficientnet-lite2", "IMAGELABELLER_MODEL_PATH": "/opt/m.onnx"}
    )
    assert (chosen.model, chosen.model_path) == ("efficientnet-lite2", Path("/opt/m.onnx"))


def test_unknown_model_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"efficientnet-lite0.*efficientnet-lite2"):
        Settings.from_environ({"IMAGELABELLER_MODEL": "resnet50"})


def test_stream_arn_comes_from_the_environment_or_a_placeholder() -> None:
    assert stream_arn({}) == PLACEHOLDER_STREAM_ARN
    assert stream_arn({"IMAGELABELLER_STREAM_ARN": "arn:x"}) == "arn:x"


def test_only_the_chalice_local_command_counts_as_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CHALICE_CLI_MODE", "true")
    assert running_under_chalice_local(["chalice", "local", "--stage", "local"])
    assert not running_under_chalice_local(["chalice", "package", "out"])
    monkeypatch.delenv("AWS_CHALICE_CLI_MODE")
    assert not running_under_chalice_local(["chalice", "local"])
