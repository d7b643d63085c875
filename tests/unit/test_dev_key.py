"""The development API key `make run` prints (chalicelib/local/dev_key.py): made once per
data folder and kept there 0600, reused while it authenticates, replaced once it does not."""

from __future__ import annotations

import dataclasses
import io
import stat
from pathlib import Path

import pytest

from chalicelib.api_keys import ApiKeys
from chalicelib.bootstrap import api_keys_for
from chalicelib.config import Settings
from chalicelib.local import dev_key
from chalicelib.local.dev_key import (
    DEV_KEY_LABEL,
    DEV_TENANT,
    announce_dev_key,
    ensure_dev_key,
    served_at,
)

CHALICE_LOCAL = ["chalice", "local", "--stage", "local", "--port", "8123", "--no-autoreload"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def keys(settings: Settings) -> ApiKeys:
    return api_keys_for(settings)


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a new `chalice local` process: nothing announced yet."""
    monkeypatch.setattr(dev_key, "_announced", set())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_start_makes_a_dev_key_and_keeps_it_private(
    settings: Settings, keys: ApiKeys
) -> None:
    made = ensure_dev_key(settings, keys)

    path = settings.data_dir / "dev-api-key"
    assert made.path == path
    assert made.created
    assert path.read_text() == made.key + "\n"
    assert mode_of(path) == 0o600
    caller = keys.authenticate(made.key)
    assert caller is not None and caller.tenant == DEV_TENANT
    (record,) = keys.list(DEV_TENANT)
    assert record.label == DEV_KEY_LABEL
    assert made.key not in repr(made)


def test_the_next_start_reuses_the_key_that_still_authenticates(
    settings: Settings, keys: ApiKeys
) -> None:
    first = ensure_dev_key(settings, keys)

    second = ensure_dev_key(settings, keys)

    assert second.key == first.key
    assert not second.created
    assert len(keys.list(DEV_TENANT)) == 1


def test_a_revoked_dev_key_is_replaced_by_a_new_one(settings: Settings, keys: ApiKeys) -> None:
    first = ensure_dev_key(settings, keys)
    keys.revoke(keys.list(DEV_TENANT)[0].key_id)

    second = ensure_dev_key(settings, keys)

    assert second.created
    assert second.key != first.key
    assert keys.authenticate(second.key) is not None
    assert (settings.data_dir / "dev-api-key").read_text() == second.key + "\n"
    assert mode_of(second.path) == 0o600


@pytest.mark.parametrize(
    "kept",
    ["", "not a key\n", "ilk_0123456789abcdef_" + "x" * 43 + "\n", "\xff"],
    ids=["empty", "garbage", "unknown-key", "not-text"],
)
def test_a_file_without_a_key_this_store_knows_gets_a_new_one(
    settings: Settings, keys: ApiKeys, kept: str
) -> None:
    path = settings.data_dir / "dev-api-key"
    path.write_bytes(kept.encode("latin-1"))
    path.chmod(0o644)

    made = ensure_dev_key(settings, keys)

    assert made.created
    assert path.read_text() == made.key + "\n"
    assert mode_of(path) == 0o600


def test_a_reused_key_file_that_others_can_read_is_made_private_again(
    settings: Settings, keys: ApiKeys
) -> None:
    first = ensure_dev_key(settings, keys)
    first.path.chmod(0o644)

    again = ensure_dev_key(settings, keys)

    assert again.key == first.key
    assert mode_of(first.path) == 0o600


def test_every_start_prints_the_key_its_file_and_a_curl_call(
    settings: Settings, keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_start = io.StringIO()
    made = announce_dev_key(settings, CHALICE_LOCAL, first_start)
    monkeypatch.setattr(dev_key, "_announced", set())  # the next `make run`
    second_start = io.StringIO()
    reused = announce_dev_key(settings, CHALICE_LOCAL, second_start)

    assert made is not None and reused is not None
    assert reused.key == made.key
    path = settings.data_dir / "dev-api-key"
    for printed in (first_start.getvalue(), second_start.getvalue()):
        key_line, curl_line = printed.splitlines()
        assert key_line == f"ImageLabeller development API key (kept in {path}): {made.key}"
        assert curl_line.strip().startswith(f"try: KEY=$(cat {path}) && curl ")
        assert '-H "Authorization: Bearer $KEY"' in curl_line
        assert curl_line.endswith(" http://127.0.0.1:8123/images")
        assert made.key not in curl_line


def test_a_process_announces_once_however_often_app_py_is_imported(settings: Settings) -> None:
    printed = io.StringIO()

    announce_dev_key(settings, CHALICE_LOCAL, printed)
    announce_dev_key(settings, CHALICE_LOCAL, printed)

    assert printed.getvalue().count("development API key") == 1


def test_the_aws_backend_gets_no_dev_key(settings: Settings) -> None:
    on_aws = dataclasses.replace(settings, backend="aws")
    printed = io.StringIO()

    def no_key_store(_: Settings) -> ApiKeys:
        raise AssertionError("the aws backend's key store must not be touched")

    assert announce_dev_key(on_aws, CHALICE_LOCAL, printed, api_keys=no_key_store) is None
    assert printed.getvalue() == ""
    assert not (settings.data_dir / "dev-api-key").exists()


def test_a_data_folder_that_cannot_hold_the_key_is_a_warning_not_a_crash(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    printed = io.StringIO()

    made = announce_dev_key(Settings(data_dir=not_a_folder), CHALICE_LOCAL, printed)

    assert made is None
    assert printed.getvalue().startswith("warning: no development API key: ")


@pytest.mark.parametrize(
    ("argv", "base_url"),
    [
        (["chalice", "local"], "http://127.0.0.1:8000"),
        (CHALICE_LOCAL, "http://127.0.0.1:8123"),
        (["chalice", "local", "--port=9001", "--host", "0.0.0.0"], "http://127.0.0.1:9001"),
        (["chalice", "local", "--host=localhost", "--port", "8080"], "http://localhost:8080"),
    ],
)
def test_the_curl_call_names_where_chalice_local_listens(argv: list[str], base_url: str) -> None:
    assert served_at(argv) == base_url
