"""Local mode's stand-in for a presigned S3 PUT: the upload URL `POST /uploads` answers
points at this API, signed with a secret of the data folder. The PUT registers the bytes
at once, as S3's notification does on AWS."""

from __future__ import annotations

from chalicelib.bootstrap import components
from chalicelib.domain.errors import ImageNotFound, UploadNotAllowed
from chalicelib.submission import Submission
from chalicelib.uploads import upload_key


def receive(image_id: str, body: bytes, expires: str, signature: str) -> Submission:
    """The same URL used again answers the first record, or UploadConflict (409) for other
    bytes. Refuses a URL that is forged, for another image, or expired."""
    built = components()
    store = built.local_upload_store
    if store is None:
        raise ImageNotFound("uploads go to the URL that POST /uploads answered")
    if not store.upload_allowed(upload_key(image_id), expires, signature):
        raise UploadNotAllowed("the upload URL is not valid or has expired")
    return built.use_cases.uploads.receive_upload(image_id, body)
