"""ImageStore on a local folder: one file per image id, written atomically."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from chalicelib.errors import StoredImageMissing

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class FolderImageStore:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._folder.mkdir(parents=True, exist_ok=True)

    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        path = self._path(image_id)
        descriptor, temporary = tempfile.mkstemp(dir=self._folder, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, image_id: str) -> bytes:
        try:
            return self._path(image_id).read_bytes()
        except FileNotFoundError:
            raise StoredImageMissing(f"no stored image {image_id}") from None

    def delete(self, image_id: str) -> None:
        self._path(image_id).unlink(missing_ok=True)

    def _path(self, image_id: str) -> Path:
        if not _SAFE_ID.match(image_id):
            raise StoredImageMissing(f"{image_id!r} is not an image id")
        return self._folder / image_id
