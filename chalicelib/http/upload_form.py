"""The form of a direct upload: multipart/form-data in the shape of S3's POST Object (the
fields `POST /uploads` answered, then the image as the last field, `file`). Read with the
standard library's email parser, which keeps binary parts byte for byte."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP

from chalicelib.domain.errors import ImageTooLarge, InvalidRequest

FORM_MEDIA_TYPE = "multipart/form-data"
# What a form may hold besides the image: its fields, boundaries and part headers.
FORM_OVERHEAD_BYTES = 64 * 1024
FILE_FIELD = "file"


@dataclass(frozen=True)
class UploadForm:
    fields: dict[str, str]  # by lower-case name, as S3 reads them
    file: bytes


def max_form_bytes(max_file_bytes: int) -> int:
    """The largest body a form with a file of `max_file_bytes` needs: anything larger can
    be refused on its Content-Length, before it is read."""
    return max_file_bytes + FORM_OVERHEAD_BYTES


def too_large(content_length: int, max_file_bytes: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"the upload is {content_length} bytes; an image may have {max_file_bytes} at most"
    )


def upload_form(content_type: str | None, body: bytes, max_file_bytes: int) -> UploadForm:
    """The fields and file of an upload form. ImageTooLarge if the body or the file is
    over the limit, InvalidRequest if it is not such a form. Fields after `file` are
    ignored, as S3 ignores them."""
    content_type = content_type or ""
    if content_type.split(";")[0].strip().lower() != FORM_MEDIA_TYPE:
        raise InvalidRequest(
            "an upload is a multipart/form-data form: the `fields` that POST /uploads "
            "answered, then the image as `file`"
        )
    if len(body) > max_form_bytes(max_file_bytes):
        raise too_large(len(body), max_file_bytes)
    if "\r" in content_type or "\n" in content_type:
        raise InvalidRequest("the Content-Type header is malformed")
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart() or message.defects:
        raise InvalidRequest("the upload form could not be read as multipart/form-data")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_content_disposition() != "form-data" or not isinstance(name, str):
            raise InvalidRequest("every part of the upload form must be a named form field")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name.lower() == FILE_FIELD:
            return _with_file(fields, data, max_file_bytes)
        try:
            fields[name.lower()] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"the form field `{name}` is not UTF-8 text") from None
    raise InvalidRequest("the upload form has no `file` field (the image, last)")


def _with_file(fields: dict[str, str], data: bytes, max_file_bytes: int) -> UploadForm:
    if not data:
        raise InvalidRequest("the uploaded file is empty")
    if len(data) > max_file_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_file_bytes}")
    return UploadForm(fields=fields, file=data)
