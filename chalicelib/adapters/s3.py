"""ImageStore on the S3 bucket `open-devops-images-<region>-<account>`: key = image id."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import StoredImageMissing
from chalicelib.domain.models import UploadTarget

MISSING_CODES = ("NoSuchKey", "404", "NotFound")
# A conditional put (If-None-Match: *) that found the key taken, or met a concurrent put.
EXISTS_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class S3ImageStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        self._client.put_object(
            Bucket=self._bucket, Key=image_id, Body=data, ContentType=content_type
        )

    def put_new(self, image_id: str, data: bytes, content_type: str) -> bool:
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=image_id,
                Body=data,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in EXISTS_CODES:
                return False
            raise
        return True

    def get(self, image_id: str) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=image_id)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in MISSING_CODES:
                raise StoredImageMissing(f"no object {image_id} in {self._bucket}") from None
            raise
        return bytes(answer["Body"].read())

    def size(self, image_id: str) -> int:
        try:
            answer = self._client.head_object(Bucket=self._bucket, Key=image_id)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in MISSING_CODES:
                raise StoredImageMissing(f"no object {image_id} in {self._bucket}") from None
            raise
        return int(answer["ContentLength"])

    def delete(self, image_id: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=image_id)

    def upload_target(
        self, key: str, content_type: str, max_bytes: int, expires_in: int
    ) -> UploadTarget:
        """A presigned POST: S3 itself refuses a body over `max_bytes` (EntityTooLarge),
        another key or another Content-Type, before anything is stored."""
        post = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return UploadTarget(
            url=str(post["url"]),
            fields={name: str(value) for name, value in post["fields"].items()},
        )
