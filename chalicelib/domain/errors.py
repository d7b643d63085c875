"""Domain errors. Each public one carries a stable code; chalicelib/http maps codes to HTTP."""

from __future__ import annotations


class ImageLabellerError(Exception):
    """An error the caller caused; its code and message are safe to show them."""

    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ImageLabellerError):
    code = "invalid_request"


class UploadNotAllowed(ImageLabellerError):
    code = "upload_not_allowed"


class InvalidPageToken(InvalidRequest):
    pass


class Conflict(ImageLabellerError):
    code = "conflict"


class UnsupportedMediaType(ImageLabellerError):
    code = "unsupported_media_type"


class UrlNotAllowed(ImageLabellerError):
    code = "url_not_allowed"


class FetchFailed(ImageLabellerError):
    code = "fetch_failed"


class NotAnImage(ImageLabellerError):
    code = "not_an_image"


class UnsupportedImageFormat(ImageLabellerError):
    code = "unsupported_image_format"


class ImageTooLarge(ImageLabellerError):
    code = "image_too_large"


class ImageNotFound(ImageLabellerError):
    code = "not_found"


class Unauthorized(ImageLabellerError):
    """No valid API key: none given, malformed, unknown, wrong or revoked, alike."""

    code = "unauthorized"


class TooManyRequests(ImageLabellerError):
    """Over a key's request rate or daily image quota; `retry_after` says when (seconds)
    to try again."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class StorageFull(ImageLabellerError):
    """The disk that holds images or records is full: nothing was stored, try later."""

    code = "insufficient_storage"


class LabellerUnavailable(Exception):
    """The model as a whole could not answer (missing file, endpoint down): retry later."""


class StoredImageMissing(Exception):
    """A record points at an image the store does not have."""


class DuplicateImageId(Exception):
    """A record with this id exists already: two registrations of one upload met, or (ids
    being random otherwise) a bug."""


class ImageIdTaken(Exception):
    """Other bytes are stored under this id already (another upload to the same URL)."""


class DuplicateImage(Exception):
    """A record of these exact bytes exists already: another submit of them won the race.

    Carries the digest and the id of that first record, read from the same write that
    refused this one (so it is there even when a search index has not caught up)."""

    def __init__(self, sha256: str, image_id: str) -> None:
        super().__init__(f"the image with sha256 {sha256} is stored already as {image_id}")
        self.sha256 = sha256
        self.image_id = image_id
