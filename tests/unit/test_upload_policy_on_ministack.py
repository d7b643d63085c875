"""The presigned POST's policy, checked by an S3 that enforces it. moto stores any POST;
MiniStack checks the policy and its SigV4 signature as S3 does, so here the S3 client the
deployed app builds (bootstrap) signs the form and the emulator judges it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib import bootstrap
from chalicelib.adapters.s3 import S3ImageStore
from chalicelib.config import Settings
from chalicelib.domain.errors import StoredImageMissing
from tests.rehearsal.local_aws import CREDENTIALS, MINISTACK_PYTHON, REGION, MiniStack

BUCKET = "imagelabeller-upload-policy"
LIMIT = 1_000

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(not MINISTACK_PYTHON.exists(), reason="no MiniStack venv (make test)"),
]


@pytest.fixture(scope="module")
def store() -> Iterator[S3ImageStore]:
    folder = Path(tempfile.mkdtemp(prefix="imagelabeller-upload-policy-"))
    stack = MiniStack(folder).start()
    monkeypatch = pytest.MonkeyPatch()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_environ(
            {
                "IMAGELABELLER_BACKEND": "aws",
                "IMAGELABELLER_BUCKET": BUCKET,
                "IMAGELABELLER_AWS_REGION": REGION,
            }
        )
        client: Any = bootstrap._s3_client(settings)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield S3ImageStore(client, BUCKET)
    finally:
        monkeypatch.undo()
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


def post(
    store: S3ImageStore, key: str, data: bytes, changed: dict[str, str] | None = None
) -> requests.Response:
    """The form for `key`, some of its fields changed, posted with `data` as the file."""
    target = store.upload_target(key, "image/jpeg", LIMIT, 900)
    return requests.post(
        target.url,
        data={**target.fields, **(changed or {})},
        files={"file": ("image.jpg", data, "image/jpeg")},
        timeout=30,
    )


def test_a_form_within_the_limit_is_stored(store: S3ImageStore) -> None:
    answer = post(store, "uploads/within", b"x" * LIMIT)
    assert answer.status_code == 204, answer.text
    assert store.size("uploads/within") == LIMIT


def test_a_form_one_byte_over_the_limit_is_refused_and_stores_nothing(
    store: S3ImageStore,
) -> None:
    answer = post(store, "uploads/over", b"x" * (LIMIT + 1))
    assert answer.status_code == 400, answer.text
    assert "<Code>EntityTooLarge</Code>" in answer.text
    with pytest.raises(StoredImageMissing):
        store.size("uploads/over")


def test_a_form_for_another_key_or_content_type_is_refused(store: S3ImageStore) -> None:
    other_key = post(store, "uploads/mine", b"x", {"key": "uploads/someone-else"})
    other_type = post(store, "uploads/mine", b"x", {"Content-Type": "text/html"})
    assert (other_key.status_code, other_type.status_code) == (403, 403)
    for key in ("uploads/mine", "uploads/someone-else"):
        with pytest.raises(StoredImageMissing):
            store.size(key)
