from __future__ import annotations

import io
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
from PIL import Image, ImageFile

from chalicelib.domain import imaging
from chalicelib.domain.errors import ImageTooLarge, NotAnImage, UnsupportedImageFormat
from tests.support import encode, photo_jpeg, photo_png, solid_image

LIMIT = 50_000_000


@pytest.mark.parametrize("format_name", imaging.ACCEPTED_FORMATS)
def test_every_accepted_format_is_recognised_from_its_bytes(format_name: str) -> None:
    info = imaging.inspect_image(solid_image(format_name, (64, 48)), LIMIT)
    assert (info.format, info.width, info.height) == (format_name, 64, 48)


def test_inspect_describes_size_and_hash() -> None:
    data = photo_png("coffee")
    info = imaging.inspect_image(data, LIMIT)
    assert info.size_bytes == len(data)
    assert len(info.sha256) == 64


@pytest.mark.parametrize(
    ("format_name", "named"),
    [
        ("PPM", "PPM"),
        ("ICO", "ICO"),
        ("PCX", "PCX"),
        ("PDF", "PDF"),
        ("EPS", "EPS"),
        ("ICNS", "ICNS"),
        ("JPEG2000", "JPEG 2000"),
        ("DDS", "DDS"),
        ("QOI", "QOI"),
    ],
)
def test_image_formats_we_do_not_accept_are_named(format_name: str, named: str) -> None:
    with pytest.raises(UnsupportedImageFormat, match=f"^{named} images are not accepted"):
        imaging.inspect_image(solid_image(format_name, (32, 32)), LIMIT)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix" + bytes(64), "HEIC"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + bytes(64), "HEIF"),
        (b"8BPS\x00\x01" + bytes(64), "PSD"),
        (b"\xc5\xd0\xd3\xc6" + bytes(64), "EPS"),
        (b"\xff\x0a" + bytes(64), "JPEG XL"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (b"\xef\xbb\xbf\n <?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
    ],
    ids=["heic", "heix", "heif", "psd", "dos-eps", "jpeg-xl", "svg", "svg-in-xml"],
)
def test_formats_we_do_not_accept_are_named_from_their_signature(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedImageFormat, match=f"^{named} images are not accepted"):
        imaging.inspect_image(data, LIMIT)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        b"\x00" * 1000,
        b"<?xml version='1.0'?><feed/>",
        b"\x00\x00\x00\x18ftypmp42" * 20,  # a video
        solid_image("TGA", (32, 32)),  # an image, but TGA has no signature to name it by
    ],
    ids=["empty", "text", "zeros", "xml", "video", "tga"],
)
def test_bytes_that_are_no_image_are_refused(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        imaging.inspect_image(data, LIMIT)


class SpyImageFile(ImageFile.ImageFile):
    """A format that would take any bytes: records every header Pillow offers it."""

    format = "SPY"
    offered: ClassVar[list[bytes]] = []

    @staticmethod
    def accept(prefix: bytes) -> bool:
        SpyImageFile.offered.append(prefix)
        return False

    def _open(self) -> None:  # never called: accept refuses
        raise SyntaxError("not a spy image")


@pytest.fixture
def spy_format(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The spy format, registered first in line: the headers Pillow offers it."""
    Image.init()
    monkeypatch.setattr(SpyImageFile, "offered", [])
    monkeypatch.setitem(Image.OPEN, "SPY", (SpyImageFile, SpyImageFile.accept))
    monkeypatch.setattr(Image, "ID", ["SPY", *Image.ID])
    return SpyImageFile.offered


@pytest.mark.parametrize(
    "data",
    [
        b"hello world",
        solid_image("ICO", (32, 32)),
        solid_image("TGA", (32, 32)),
        b"8BPS\x00\x01" + bytes(64),
        photo_jpeg("coffee")[:100],
    ],
    ids=["text", "ico", "tga", "psd", "truncated-jpeg"],
)
def test_refused_bytes_reach_no_decoder_of_a_format_we_do_not_accept(
    spy_format: list[bytes], data: bytes
) -> None:
    with pytest.raises((NotAnImage, UnsupportedImageFormat)):
        imaging.inspect_image(data, LIMIT)
    assert spy_format == []


def test_only_the_accepted_formats_decoders_are_asked_to_open_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted = (photo_png("coffee"), photo_jpeg("coffee"))
    refused = (b"hello world", solid_image("PPM"), solid_image("TGA"))
    asked: list[object] = []
    real_open = Image.open

    def open_spy(fp: Any, mode: Literal["r"] = "r", formats: Any = None) -> Image.Image:
        asked.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", open_spy)
    for data in accepted:
        imaging.inspect_image(data, LIMIT)
        imaging.decode_rgb(data, LIMIT)
    for data in refused:
        with pytest.raises((NotAnImage, UnsupportedImageFormat)):
            imaging.inspect_image(data, LIMIT)
    assert asked and all(formats == imaging.ACCEPTED_FORMATS for formats in asked)


@pytest.mark.parametrize("make", [photo_jpeg, photo_png])
def test_truncated_photo_is_refused_at_inspection(make: object) -> None:
    data = make("coffee")  # type: ignore[operator]
    with pytest.raises(NotAnImage, match=r"truncated|damaged"):
        imaging.inspect_image(data[: len(data) // 2], LIMIT)


def test_jpeg_with_bytes_after_its_end_marker_is_accepted() -> None:
    data = photo_jpeg("coffee") + b"trailer some cameras append"
    assert imaging.inspect_image(data, LIMIT).format == "JPEG"


def test_jpeg_with_stray_bytes_between_segments_is_accepted() -> None:
    data = photo_jpeg("coffee")
    after_first_segment = 4 + int.from_bytes(data[4:6], "big")
    assert data[after_first_segment] == 0xFF
    padded = data[:after_first_segment] + b"\x00junk" + data[after_first_segment:]
    assert imaging.inspect_image(padded, LIMIT).format == "JPEG"
    assert imaging.decode_rgb(padded, LIMIT).size == (600, 400)


def test_png_with_a_damaged_chunk_is_refused_at_inspection() -> None:
    data = bytearray(photo_png("coffee"))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(NotAnImage, match="damaged"):
        imaging.inspect_image(bytes(data), LIMIT)


def test_decompression_bomb_is_too_large_before_any_decoding() -> None:
    bomb = encode(Image.new("1", (20_000, 20_000)), "PNG")
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLarge, match="400000000 pixels"):
        imaging.inspect_image(bomb, LIMIT)
    with pytest.raises(ImageTooLarge):
        imaging.decode_rgb(bomb, LIMIT)


def test_exif_orientation_is_applied_before_labelling() -> None:
    landscape = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    data = encode(landscape, "JPEG", exif=exif.tobytes())
    assert imaging.decode_rgb(data, LIMIT).size == (20, 40)


def test_animation_decodes_to_its_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    pixel = imaging.decode_rgb(buffer.getvalue(), LIMIT).getpixel((8, 8))
    assert pixel == (255, 0, 0)


@pytest.mark.parametrize(
    ("mode", "format_name"),
    [
        ("CMYK", "JPEG"),
        ("P", "PNG"),
        ("LA", "PNG"),
        ("RGBA", "WEBP"),
        ("L", "BMP"),
        ("1", "TIFF"),
        ("I;16", "PNG"),
        ("I;16", "TIFF"),
    ],
)
def test_every_mode_decodes_to_8_bit_rgb(mode: str, format_name: str) -> None:
    image = imaging.decode_rgb(solid_image(format_name, (30, 20), mode), LIMIT)
    assert (image.mode, image.size) == ("RGB", (30, 20))


def test_sixteen_bit_white_stays_white() -> None:
    data = encode(Image.new("I;16", (8, 8), 65535), "PNG")
    assert imaging.decode_rgb(data, LIMIT).getpixel((0, 0)) == (255, 255, 255)


def test_jpeg_decodes_at_reduced_scale_but_never_below_the_asked_size() -> None:
    big = encode(Image.new("RGB", (2400, 1600), (10, 20, 30)), "JPEG")
    image = imaging.decode_rgb(big, LIMIT, min_short_side=256)
    assert image.size == (600, 400)  # the 1/4 scale; 1/8 would be 200 pixels high


def test_preprocess_gives_normalised_nchw_float32() -> None:
    white = Image.new("RGB", (300, 200), (255, 255, 255))
    black = Image.new("RGB", (200, 300), (0, 0, 0))
    tensor = imaging.preprocess([white, black], 224, 224 / 256)
    assert tensor.shape == (2, 3, 224, 224)
    assert tensor.dtype == np.float32
    assert np.allclose(tensor[0], (255 - 127) / 128)
    assert np.allclose(tensor[1], -127 / 128)


def test_centre_crop_covers_the_middle_of_the_short_side() -> None:
    assert imaging.center_crop_box(400, 200, 0.5) == (150.0, 50.0, 250.0, 150.0)
