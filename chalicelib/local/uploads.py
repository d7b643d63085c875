"""Local mode's stand-in for S3's presigned POST: the form `POST /uploads` answers points
at this API, signed with a secret of the data folder. The form's POST registers the bytes
at once, as S3's notification does on AWS, and is refused (413) when they are over the
image size limit, as S3 refuses them, before anything is stored."""

from __future__ import annotations

from chalicelib.bootstrap import components
from chalicelib.domain.errors import ImageNotFound, UploadNotAllowed
from chalicelib.events.uploads import parse_upload_key
from chalicelib.http.upload_form import upload_form
from chalicelib.submission import Submission
from chalicelib.uploads import upload_key


def receive(image_id: str, content_type: str | None, body: bytes) -> Submission:
    """The same form used again answers the first record, or UploadConflict (409) for
    other bytes. Refuses a form that is forged, for another image or another Content-Type,
    or expired (403), and a file over the size limit (413)."""
    built = components()
    store = built.local_upload_store
    if store is None:
        raise ImageNotFound("uploads go to the URL that POST /uploads answered")
    form = upload_form(content_type, body, built.settings.limits.max_image_bytes)
    fields = form.fields
    key = fields.get("key", "")
    signed = store.upload_allowed(
        key, fields.get("content-type", ""), fields.get("expires", ""), fields.get("signature", "")
    )
    # The signed key names the tenant that asked for the form, and must be this image's.
    parsed = parse_upload_key(key)
    if not signed or parsed is None or parsed[1] != image_id or key != upload_key(*parsed):
        raise UploadNotAllowed("the upload form is not valid or has expired")
    return built.use_cases.uploads.receive_upload(parsed[0], image_id, form.file)
