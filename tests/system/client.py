"""A small client of the public API for black-box tests: submit, read, wait."""

from __future__ import annotations

from typing import Any

import requests

from tests.support import poll

DEADLINE_SECONDS = 60
# 202: a new image; 200: the same bytes were submitted before (the first record answers).
ACCEPTED = (200, 202)


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def record(self, image_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base_url}/images/{image_id}", timeout=10)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_until_finished(self, image_id: str) -> dict[str, Any]:
        """The record once it left NOT_CLASSIFIED, or as it stood at the deadline."""
        finished: dict[str, Any] = poll(
            lambda: self.record(image_id),
            lambda current: current["status"] != "NOT_CLASSIFIED",
            timeout=DEADLINE_SECONDS,
        )
        return finished

    def submit_url(self, url: str) -> str:
        response = requests.post(f"{self.base_url}/images", json={"url": url}, timeout=30)
        assert response.status_code in ACCEPTED, response.text
        return str(response.json()["image_id"])

    def submit_upload(self, data: bytes, content_type: str) -> str:
        response = requests.post(
            f"{self.base_url}/images",
            data=data,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert response.status_code in ACCEPTED, response.text
        return str(response.json()["image_id"])

    def legacy_submit(self, url: str) -> str:
        response = requests.get(f"{self.base_url}/submit-image", params={"url": url}, timeout=30)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"ImageId"}
        return str(response.json()["ImageId"])

    def legacy_label(self, image_id: str) -> str:
        response = requests.get(
            f"{self.base_url}/get-image-label", params={"imageId": image_id}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"ImageLabel"}
        return str(response.json()["ImageLabel"])
