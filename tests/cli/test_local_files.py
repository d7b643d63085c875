"""Which files `label` looks at, and how each is judged: labelled, skipped or an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import Limits
from imagelabeller_cli.local_files import (
    Candidate,
    Refusal,
    candidates,
    read_image,
    upload_media_type,
)
from tests.cli.support import PhotoFolder, truncated_jpeg, write_photo_folder
from tests.support import photo_jpeg, photo_png, solid_image


@pytest.fixture
def photos(tmp_path: Path) -> PhotoFolder:
    return write_photo_folder(tmp_path / "photos")


DEFAULT_LIMITS = Limits()


def refusal_of(
    path: Path, data: bytes, in_folder: bool, limits: Limits = DEFAULT_LIMITS
) -> Refusal:
    path.write_bytes(data)
    refusal = read_image(Candidate(path, found_in_folder=in_folder), limits)
    assert isinstance(refusal, Refusal), "expected the file to be refused"
    return refusal


def test_folders_are_walked_recursively_in_name_order_after_the_files_named(
    photos: PhotoFolder,
) -> None:
    found = candidates([photos.coffee, photos.root / "trips"])

    assert found == [
        Candidate(photos.coffee),
        Candidate(photos.broken, found_in_folder=True),
        Candidate(photos.chelsea, found_in_folder=True),
        Candidate(photos.motorcycle, found_in_folder=True),
    ]


def test_a_file_named_and_also_inside_a_folder_named_is_labelled_once(
    photos: PhotoFolder,
) -> None:
    found = candidates([photos.chelsea, photos.root, photos.root / "trips" / ".." / "coffee.png"])

    paths = [candidate.path for candidate in found]
    assert paths.count(photos.chelsea) == 1
    assert len(found) == len(photos.all_files)
    assert found[0] == Candidate(photos.chelsea)  # the first mention wins


def test_a_symlinked_folder_is_not_followed(photos: PhotoFolder) -> None:
    (photos.root / "trips" / "loop").symlink_to(photos.root, target_is_directory=True)

    found = candidates([photos.root])

    assert sorted(candidate.path for candidate in found) == sorted(photos.all_files)


def test_a_whole_image_is_read(tmp_path: Path) -> None:
    photo = tmp_path / "coffee.jpg"
    photo.write_bytes(photo_jpeg("coffee"))

    assert read_image(Candidate(photo), Limits()) == photo.read_bytes()


@pytest.mark.parametrize("in_folder", [True, False])
def test_a_truncated_image_is_an_error_wherever_it_was_found(
    tmp_path: Path, in_folder: bool
) -> None:
    refusal = refusal_of(tmp_path / "cut.jpg", truncated_jpeg(), in_folder)

    assert not refusal.skipped
    assert refusal.reason.startswith("the image data is damaged or truncated")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just text\n", "not an image (accepted formats: JPEG, PNG"),
        (b"", "not an image"),
        (solid_image("PPM"), "PPM images are not accepted"),
        (solid_image("ICO"), "ICO images are not accepted"),
    ],
    ids=["text", "empty", "ppm", "ico"],
)
def test_files_that_are_no_image_we_accept_are_skipped_in_folders_and_errors_when_named(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    in_folder = refusal_of(tmp_path / "file", data, in_folder=True)
    named = refusal_of(tmp_path / "file", data, in_folder=False)

    assert in_folder.skipped
    assert not named.skipped
    assert in_folder.reason.startswith(reason)
    assert named.reason == in_folder.reason


def test_a_file_over_the_byte_limit_is_an_error_if_it_is_an_image_and_skipped_if_not(
    tmp_path: Path,
) -> None:
    limits = Limits(max_image_bytes=1000)
    big_photo = refusal_of(tmp_path / "big.png", photo_png("coffee"), True, limits)
    big_video = refusal_of(tmp_path / "clip.mp4", b"\x00\x00\x00\x18ftypmp42" * 200, True, limits)

    assert not big_photo.skipped
    assert big_photo.reason.startswith(f"the file is {len(photo_png('coffee'))} bytes; the limit")
    assert big_video.skipped


def test_an_image_over_the_pixel_limit_is_an_error(tmp_path: Path) -> None:
    refusal = refusal_of(
        tmp_path / "wide.png", solid_image(size=(400, 300)), True, Limits(max_image_pixels=1000)
    )

    assert not refusal.skipped
    assert "the limit is 1000" in refusal.reason


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()

    refusal = read_image(Candidate(folder), Limits())

    assert isinstance(refusal, Refusal)
    assert refusal.reason.startswith("cannot read the file")
    assert not refusal.skipped


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (photo_jpeg("coffee"), "image/jpeg"),
        (photo_png("coffee"), "image/png"),
        (solid_image("WEBP"), "image/webp"),
        (solid_image("GIF"), "image/gif"),
        (b"not an image", "application/octet-stream"),
        (solid_image("PPM"), "application/octet-stream"),
    ],
    ids=["jpeg", "png", "webp", "gif", "text", "ppm"],
)
def test_uploads_are_typed_from_their_bytes(data: bytes, media_type: str) -> None:
    assert upload_media_type(data) == media_type
