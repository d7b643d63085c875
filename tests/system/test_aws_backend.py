"""Black-box on the AWS backend: `chalice local --stage local-aws` against moto_server
(S3 + DynamoDB with its stream) and the local SageMaker InvokeEndpoint server.

Submit -> S3 object + DynamoDB item -> DynamoDB stream -> the stream handler ->
SageMaker labeller -> CLASSIFIED, all over real HTTP with the code Lambda runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from chalicelib.adapters.dynamodb_keys import DynamoDBKeyStore
from chalicelib.api_keys import ApiKeys
from tests.fixtures.aws import BUCKET, LABEL_INDEX_TABLE, REGION, TABLE, create_label_table
from tests.support import EXPECTED_TOP_LABELS, LoopbackServer, photo_jpeg, photo_png
from tests.system.background import moto_server, sagemaker_runtime_server
from tests.system.chalice_local import ChaliceLocal
from tests.system.client import ApiClient

ENDPOINT = "jumpstart-inception-v3"


@pytest.fixture(scope="module")
def aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("aws-logs")
    moto = moto_server(logs / "moto.log").start()
    sagemaker = sagemaker_runtime_server(logs / "sagemaker.log", ENDPOINT).start()
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker.url,
    }
    try:
        s3 = aws_client("s3", environment)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        create_label_table(aws_client("dynamodb", environment))
        yield environment
    finally:
        sagemaker.stop()
        moto.stop()


def aws_client(service: str, environment: dict[str, str]) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def server(aws_environment: dict[str, str], tmp_path: Path) -> Iterator[ChaliceLocal]:
    process = ChaliceLocal(
        tmp_path / "data", tmp_path / "chalice.log", stage="local-aws", environment=aws_environment
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def api_key(aws_environment: dict[str, str]) -> str:
    """A key of tenant `system-tests`, made in the key store the stage reads (items of
    ImageLabelIndex in moto_server), as `imagelabeller keys create` would."""
    keys = ApiKeys(DynamoDBKeyStore(aws_client("dynamodb", aws_environment), LABEL_INDEX_TABLE))
    return keys.create("system-tests").key


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def test_url_and_upload_flow_through_s3_dynamodb_stream_and_sagemaker(
    server: ChaliceLocal,
    aws_environment: dict[str, str],
    api_key: str,
    photo_server: LoopbackServer,
) -> None:
    auth = bearer(api_key)
    coffee = photo_png("coffee")
    by_url = requests.post(
        f"{server.base_url}/images",
        json={"url": photo_server.serve("/coffee.png", coffee)},
        headers=auth,
        timeout=30,
    )
    assert by_url.status_code == 202, by_url.text
    cat = photo_jpeg("chelsea")
    by_upload = requests.post(
        f"{server.base_url}/images",
        data=cat,
        headers={"Content-Type": "image/jpeg", **auth},
        timeout=30,
    )
    assert by_upload.status_code == 202, by_upload.text

    s3 = aws_client("s3", aws_environment)
    dynamodb = aws_client("dynamodb", aws_environment)
    for response, photo, data in ((by_url, "coffee", coffee), (by_upload, "chelsea", cat)):
        image_id = response.json()["image_id"]
        stored = s3.get_object(Bucket=BUCKET, Key=image_id)["Body"].read()
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
        record = ApiClient(server.base_url, api_key).wait_until_finished(image_id)
        assert record["status"] == "CLASSIFIED", record
        assert record["model"] == f"sagemaker/{ENDPOINT}"
        assert record["labels"][0]["name"] in EXPECTED_TOP_LABELS[photo]
        item = dynamodb.get_item(TableName=TABLE, Key={"Id": {"S": image_id}})["Item"]
        assert item["Status"] == {"S": "CLASSIFIED"}
        assert item["Label"]["S"] == ", ".join(label["name"] for label in record["labels"])
        legacy = requests.get(
            f"{server.base_url}/get-image-label",
            params={"imageId": image_id},
            headers=auth,
            timeout=10,
        ).json()
        assert legacy == {"ImageLabel": item["Label"]["S"]}
        # Without the key: refused, or (the stage keeps the legacy route open) another
        # tenant's, which does not own the image.
        keyless = requests.get(f"{server.base_url}/images/{image_id}", timeout=10)
        assert keyless.status_code == 401, keyless.text
        legacy_keyless = requests.get(
            f"{server.base_url}/get-image-label", params={"imageId": image_id}, timeout=10
        )
        assert legacy_keyless.status_code == 404, legacy_keyless.text


def test_bad_input_on_the_aws_backend_stores_nothing(
    server: ChaliceLocal, aws_environment: dict[str, str], api_key: str
) -> None:
    auth = bearer(api_key)
    s3 = aws_client("s3", aws_environment)
    before = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    truncated = photo_jpeg("coffee")[:20000]
    response = requests.post(
        f"{server.base_url}/images",
        data=truncated,
        headers={"Content-Type": "image/jpeg", **auth},
        timeout=30,
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "not_an_image"
    missing = requests.get(
        f"{server.base_url}/images/00000000-0000-4000-8000-000000000000", headers=auth, timeout=10
    )
    assert missing.status_code == 404
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == before
