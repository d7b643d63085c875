"""A small client of the public API for black-box tests: submit, read, wait."""

from __future__ import annotations

from typing import Any

import requests

from tests.support import poll

DEADLINE_SECONDS = 60
# 202: a new image; 200: the same bytes were submitted before (the first record answers).
ACCEPTED = (200, 202)


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        """Every call carries `api_key` (as `Authorization: Bearer`), but the upload form,
        which goes where the ticket says (S3 on AWS) and is authorised by its fields."""
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = requests.Session()
        if api_key is not None:
            self._http.headers["Authorization"] = f"Bearer {api_key}"

    def record(self, image_id: str) -> dict[str, Any]:
        response = self._http.get(f"{self.base_url}/images/{image_id}", timeout=10)
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
        response = self._http.post(f"{self.base_url}/images", json={"url": url}, timeout=30)
        assert response.status_code in ACCEPTED, response.text
        return str(response.json()["image_id"])

    def submit_upload(self, data: bytes, content_type: str) -> str:
        response = self._http.post(
            f"{self.base_url}/images",
            data=data,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        assert response.status_code in ACCEPTED, response.text
        return str(response.json()["image_id"])

    def start_direct_upload(self, content_type: str) -> dict[str, Any]:
        """An upload ticket (POST /uploads): where to POST the form, and its fields."""
        response = self._http.post(
            f"{self.base_url}/uploads", json={"content_type": content_type}, timeout=30
        )
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        assert ticket["method"] == "POST", ticket
        return ticket

    def post_upload_form(self, ticket: dict[str, Any], data: bytes) -> requests.Response:
        """The form a ticket asks for, as any client sends it: the ticket's fields as given,
        then the image as the last field, `file`. On AWS it goes to S3 (204 when stored);
        in local mode to the API (202, the record)."""
        return requests.post(
            ticket["upload_url"],
            data=ticket["fields"],
            files={"file": ("image", data, "application/octet-stream")},
            timeout=120,
        )

    def upload_directly(self, data: bytes, content_type: str) -> str:
        """Upload through an upload form; the image id (its record may come later)."""
        ticket = self.start_direct_upload(content_type)
        response = self.post_upload_form(ticket, data)
        assert 200 <= response.status_code < 300, response.text
        return str(ticket["image_id"])

    def wait_until_uploaded_and_finished(self, image_id: str) -> dict[str, Any]:
        """wait_until_finished for a direct upload, whose record appears only once the
        upload's notification has been handled (on AWS): 404 until then."""
        poll(
            lambda: self._http.get(f"{self.base_url}/images/{image_id}", timeout=10).status_code,
            lambda status: status != 404,
            timeout=DEADLINE_SECONDS,
        )
        return self.wait_until_finished(image_id)

    def images_with_label(self, label: str) -> list[str]:
        """The ids label search finds for `label` (the first page), best score first."""
        response = self._http.get(f"{self.base_url}/labels/{label}/images", timeout=10)
        assert response.status_code == 200, response.text
        return [hit["image_id"] for hit in response.json()["images"]]

    def legacy_submit(self, url: str, keyless: bool = False) -> str:
        """GET /submit-image as the original's clients call it: with `keyless`, no key (the
        legacy tenant's, where the stage keeps the route open)."""
        http = requests if keyless else self._http
        response = http.get(f"{self.base_url}/submit-image", params={"url": url}, timeout=30)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"ImageId"}
        return str(response.json()["ImageId"])

    def legacy_label(self, image_id: str, keyless: bool = False) -> str:
        http = requests if keyless else self._http
        response = http.get(
            f"{self.base_url}/get-image-label", params={"imageId": image_id}, timeout=10
        )
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"ImageLabel"}
        return str(response.json()["ImageLabel"])
