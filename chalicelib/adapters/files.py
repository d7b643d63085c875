"""ImageStore on a local folder: one file per key, written atomically.

Direct uploads get a form to POST to the local API, signed like S3's presigned POST: the
form's fields hold the key, the Content-Type, an expiry time and an HMAC-SHA256 over the
three, with a secret kept in the folder.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib.domain.errors import StorageFull, StoredImageMissing
from chalicelib.domain.models import UploadTarget

# An image id, or a direct upload's `uploads/<tenant>/<id>` (before tenancy `uploads/<id>`).
_SAFE_KEY = re.compile(r"^(uploads/([a-z0-9][a-z0-9-]{0,62}/)?)?[A-Za-z0-9_-]{1,128}$")
UPLOAD_PATH = "/uploads/"
SECRET_FILE = ".upload-secret"
# What a write to a full disk (or an exhausted quota) fails with.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class FolderImageStore:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._folder.mkdir(parents=True, exist_ok=True)

    def put(self, image_id: str, data: bytes, content_type: str) -> None:
        path = self._path(image_id)
        with self._written(data) as temporary:
            os.replace(temporary, path)

    def put_new(self, image_id: str, data: bytes, content_type: str) -> bool:
        path = self._path(image_id)
        with self._written(data) as temporary:
            try:
                os.link(temporary, path)  # fails if the name exists, unlike a rename
            except FileExistsError:
                return False
        return True

    @contextmanager
    def _written(self, data: bytes) -> Iterator[Path]:
        """A temporary file of the folder holding `data` on disk, removed afterwards unless
        it was renamed away."""
        try:
            descriptor, name = tempfile.mkstemp(dir=self._folder, prefix=".incoming-")
        except OSError as error:
            raise _storage_error(error) from error
        temporary = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            yield temporary
        except OSError as error:
            raise _storage_error(error) from error
        finally:
            temporary.unlink(missing_ok=True)

    def upload_target(
        self, key: str, content_type: str, max_bytes: int, expires_in: int
    ) -> UploadTarget:
        """A form for the local API's upload route, which enforces `max_bytes` itself
        (the image size limit of its settings)."""
        self._path(key)  # refuses keys that are not ours
        expires = int(time.time()) + expires_in
        return UploadTarget(
            url=f"{UPLOAD_PATH}{key.rsplit('/', 1)[-1]}",
            fields={
                "key": key,
                "Content-Type": content_type,
                "expires": str(expires),
                "signature": self._signature(key, content_type, expires),
            },
        )

    def upload_allowed(self, key: str, content_type: str, expires: str, signature: str) -> bool:
        """Whether an upload form carries this store's valid, unexpired signature of its
        key and Content-Type."""
        if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
            return False
        expected = self._signature(key, content_type, int(expires)).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))

    def _signature(self, key: str, content_type: str, expires: int) -> str:
        message = f"{key}\n{content_type}\n{expires}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        path = self._folder / SECRET_FILE
        if not path.exists():
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another thread made it first
                return path.read_bytes()
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return path.read_bytes()

    def get(self, image_id: str) -> bytes:
        try:
            return self._path(image_id).read_bytes()
        except FileNotFoundError:
            raise StoredImageMissing(f"no stored image {image_id}") from None

    def size(self, image_id: str) -> int:
        try:
            return self._path(image_id).stat().st_size
        except FileNotFoundError:
            raise StoredImageMissing(f"no stored image {image_id}") from None

    def delete(self, image_id: str) -> None:
        self._path(image_id).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key):
            raise StoredImageMissing(f"{key!r} is not an image key")
        path = self._folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _storage_error(error: OSError) -> OSError | StorageFull:
    if error.errno in NO_SPACE_ERRNOS:
        return StorageFull("the image store is full; try again later")
    return error
