"""Which local files `imagelabeller label` looks at, and reading one as an image.

A file named on the command line is always labelled, and anything wrong with it is an
error. A file found by walking a folder is labelled only if it is an image: other files
(text, videos, formats we do not accept) are skipped, not counted as failures. Whether a
file is an image is decided from its bytes, as the service decides, never from its name.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from chalicelib.config import Limits
from chalicelib.domain import imaging
from chalicelib.domain.errors import ImageLabellerError, NotAnImage, UnsupportedImageFormat

# Enough of a file's start for Pillow to recognise its format.
HEADER_BYTES = 64 * 1024
NOT_AN_IMAGE = f"not an image (accepted formats: {', '.join(imaging.ACCEPTED_FORMATS)})"


@dataclass(frozen=True)
class Candidate:
    """A file to label: named on the command line, or found in a folder."""

    path: Path
    found_in_folder: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why a file is not labelled: `skipped` (not an image, in a folder) or an error."""

    reason: str
    skipped: bool


def missing_paths(paths: Sequence[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def candidates(paths: Sequence[Path]) -> list[Candidate]:
    """The files named, and every file under the folders named, in a stable order; a file
    reached twice (named, and in a folder named too) is labelled once."""
    found: list[Candidate] = []
    for path in paths:
        if path.is_dir():
            found.extend(Candidate(file, found_in_folder=True) for file in files_under(path))
        else:
            found.append(Candidate(path))
    return _first_of_each_file(found)


def _first_of_each_file(found: Sequence[Candidate]) -> list[Candidate]:
    seen: set[Path] = set()
    unique: list[Candidate] = []
    for candidate in found:
        key = candidate.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return unique


def files_under(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder`, recursively, sorted; symlinked folders are not
    followed (no cycles), symlinked files are."""
    for directory, subdirectories, files in folder.walk():
        subdirectories.sort()
        for name in sorted(files):
            path = directory / name
            if path.is_file():
                yield path


def read_image(candidate: Candidate, limits: Limits) -> bytes | Refusal:
    """The file's bytes if it is a whole image we accept, else why it is not labelled."""
    try:
        size = candidate.path.stat().st_size
        if size > limits.max_image_bytes:
            return _too_large(candidate, size, limits.max_image_bytes)
        data = candidate.path.read_bytes()
    except OSError as exc:
        return Refusal(f"cannot read the file: {exc.strerror or exc}", skipped=False)
    refusal = _check_image(candidate, data, limits.max_image_pixels)
    return data if refusal is None else refusal


def _check_image(candidate: Candidate, data: bytes, max_pixels: int) -> Refusal | None:
    try:
        imaging.inspect_image(data, max_pixels)
    except UnsupportedImageFormat as exc:
        return Refusal(exc.message, skipped=candidate.found_in_folder)
    except NotAnImage as exc:
        if not pillow_recognises(data):
            return Refusal(NOT_AN_IMAGE, skipped=candidate.found_in_folder)
        return Refusal(exc.message, skipped=False)  # an image, but damaged or truncated
    except ImageLabellerError as exc:  # too many pixels
        return Refusal(exc.message, skipped=False)
    return None


def _too_large(candidate: Candidate, size: int, limit: int) -> Refusal:
    if candidate.found_in_folder and not pillow_recognises(_header(candidate.path)):
        return Refusal(NOT_AN_IMAGE, skipped=True)
    return Refusal(
        f"the file is {size} bytes; the limit is {limit} (IMAGELABELLER_MAX_IMAGE_BYTES)",
        skipped=False,
    )


def _header(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(HEADER_BYTES)


def pillow_recognises(data: bytes) -> bool:
    """Whether the bytes start like an image of any format Pillow knows (header only).

    Tells a damaged image (an error) from a file that is no image at all (skipped)."""
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except UnidentifiedImageError:
        return False
    except Exception:  # a decoder claimed the header, then choked on it: a damaged image
        return True


def upload_media_type(data: bytes) -> str:
    """The Content-Type to upload `data` with, from its bytes (header only).

    Bytes that are no image we accept go up as application/octet-stream, so the service,
    which has the last word, answers with its own error."""
    try:
        with Image.open(io.BytesIO(data), formats=imaging.ACCEPTED_FORMATS) as image:
            return imaging.media_type(str(image.format))
    except Exception:  # Pillow raises many types on bytes it cannot read
        return "application/octet-stream"
