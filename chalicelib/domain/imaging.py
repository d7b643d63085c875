"""Sniffing, safe decoding and model preprocessing of image bytes (Pillow + numpy)."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from chalicelib.domain.errors import ImageTooLarge, NotAnImage, UnsupportedImageFormat
from chalicelib.domain.models import ImageInfo

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
}
# We enforce our own pixel limit before decoding; Pillow's global one would raise its own
# error type at a different threshold.
Image.MAX_IMAGE_PIXELS = None

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def inspect_image(data: bytes, max_pixels: int, sha256: str | None = None) -> ImageInfo:
    """Check that `data` is a whole image we accept, cheaply, and describe it.

    A truncated file is refused here rather than at labelling time. JPEG and PNG, most
    uploads, are checked without decoding their pixels (see `_check_complete`); the
    labeller decodes them once, later. `sha256` is the bytes' hex digest when the caller
    has it already.
    """
    with _open_accepted(data, max_pixels) as image:
        info = ImageInfo(
            format=str(image.format),
            width=image.width,
            height=image.height,
            size_bytes=len(data),
            sha256=sha256 or hashlib.sha256(data).hexdigest(),
        )
        _check_complete(image, data)
    return info


def _check_complete(image: Image.Image, data: bytes) -> None:
    """Refuse a truncated image. A JPEG must have its end-of-image marker after the start
    of its scan data; a PNG's chunks must all be present and pass their CRCs up to IEND.
    Neither needs the pixels: decoding them here too cost as much as labelling's decode.
    Other formats are decoded (at 1/8 scale where the format allows)."""
    if image.format == "JPEG":
        if data.find(b"\xff\xd9", _jpeg_scan_start(data)) < 0:
            raise NotAnImage("the image data is damaged or truncated: the JPEG has no end")
    elif image.format == "PNG":
        with _damage_is_not_an_image("the image data is damaged or truncated"):
            image.verify()
    else:
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        _load(image)


def _jpeg_scan_start(data: bytes) -> int:
    """Where the first scan's data begins: past the marker segments up to SOS (FFDA)."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:  # stray bytes between segments, which libjpeg skips
            position = data.find(b"\xff", position)
            if position < 0:
                break
            continue
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:
            return position
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    raise NotAnImage("the image data is damaged or truncated: the JPEG has no scan")


def decode_rgb(data: bytes, max_pixels: int, min_short_side: int = 0) -> Image.Image:
    """The image's first frame, upright (EXIF orientation applied), as 8-bit RGB.

    `min_short_side` lets JPEG decode at reduced scale (1/2, 1/4, 1/8) when the result is
    still at least that large on its short side, which is most of the decoding cost saved.
    """
    with _open_accepted(data, max_pixels) as image:
        if min_short_side and image.format == "JPEG":
            scale = min_short_side / min(image.width, image.height)
            image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
        _load(image)
        with _damage_is_not_an_image("its orientation data is damaged"):
            # In place: without an orientation to apply, a copy would be a full-size
            # memcpy for nothing.
            ImageOps.exif_transpose(image, in_place=True)
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: 16-bit scaled down, alpha dropped, palettes expanded."""
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "I" else max(float(pixels.max()), 1.0)
        scaled = np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    return image.convert("RGB")


def center_crop_box(
    width: int, height: int, crop_fraction: float
) -> tuple[float, float, float, float]:
    """The centred square covering `crop_fraction` of the short side."""
    side = min(width, height) * crop_fraction
    left = (width - side) / 2
    top = (height - side) / 2
    return (left, top, left + side, top + side)


def crop_and_resize(image: Image.Image, size: int, crop_fraction: float) -> np.ndarray:
    """The centre crop, bicubic-resized to size x size, as HWC uint8."""
    box = center_crop_box(image.width, image.height, crop_fraction)
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC, box=box))


def normalise(pixels: Sequence[np.ndarray]) -> np.ndarray:
    """EfficientNet-Lite input from HWC uint8 crops: (x - 127) / 128, NCHW float32."""
    return np.stack([normalise_one(crop) for crop in pixels])


def normalise_one(crop: np.ndarray) -> np.ndarray:
    """One HWC uint8 crop as the model's CHW float32 input, (x - 127) / 128, computed in
    place on one new array (a batch's worth at once is memory-bound, not compute-bound)."""
    chw = crop.transpose(2, 0, 1).astype(np.float32)
    chw -= 127.0
    chw *= 1.0 / 128.0
    return chw


def preprocess(images: Sequence[Image.Image], size: int, crop_fraction: float) -> np.ndarray:
    """EfficientNet-Lite input: centre crop, bicubic resize, (x - 127) / 128, NCHW float32."""
    return normalise([crop_and_resize(image, size, crop_fraction) for image in images])


def is_image_media_type(media: str) -> bool:
    """What a client may send image bytes as: any image/* type, or plain octet-stream
    (the bytes decide the format; see inspect_image)."""
    media = media.split(";")[0].strip().lower()
    return media.startswith("image/") or media == "application/octet-stream"


def media_type(format_name: str) -> str:
    return MEDIA_TYPES.get(format_name, "application/octet-stream")


def _open_accepted(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise NotAnImage("the body is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise _unaccepted(data) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from None
    except Exception as exc:  # decoders raise many types on hostile headers; see _load
        raise NotAnImage(f"the image header could not be read: {exc}") from None
    pixels = image.width * image.height
    if pixels > max_pixels:
        image.close()
        raise ImageTooLarge(
            f"the image is {image.width}x{image.height} = {pixels} pixels; "
            f"the limit is {max_pixels}"
        )
    if pixels == 0:
        image.close()
        raise NotAnImage("the image has no pixels")
    return image


def _unaccepted(data: bytes) -> Exception:
    """Tell an image format we do not accept apart from bytes that are no image at all,
    by the signature only: no decoder but those of the accepted formats sees the bytes."""
    accepted = ", ".join(ACCEPTED_FORMATS)
    found = _refused_format(data)
    if found is None:
        return NotAnImage(f"the body is not an image (accepted formats: {accepted})")
    return UnsupportedImageFormat(f"{found} images are not accepted (accepted: {accepted})")


# Well-known image formats we refuse, by their leading bytes. TGA has no signature.
_REFUSED_SIGNATURES = tuple(
    (name, re.compile(pattern, re.DOTALL))
    for name, pattern in (
        ("HEIC", rb"....ftyp(?:heic|heix|hevc|hevx|heim|heis)"),
        ("HEIF", rb"....ftyp(?:mif1|msf1)"),
        ("PSD", rb"8BPS"),
        ("PDF", rb"%PDF-"),
        ("EPS", rb"%!PS|\xc5\xd0\xd3\xc6"),  # PostScript text, or the DOS EPS header
        ("ICO", rb"\x00\x00\x01\x00"),
        ("ICNS", rb"icns"),
        ("JPEG 2000", rb"\x00\x00\x00\x0cjP  \r\n\x87\n|\xff\x4f\xff\x51"),
        ("JPEG XL", rb"\x00\x00\x00\x0cJXL \r\n\x87\n|\xff\x0a"),
        ("QOI", rb"qoif"),
        ("DDS", rb"DDS "),
        ("PPM", rb"P[1-7]\s"),  # the Netpbm family: PBM, PGM, PPM, PAM
        ("PCX", rb"\x0a[\x00\x02-\x05]\x01[\x01\x02\x04\x08]"),
    )
)
_SVG_HEAD_BYTES = 4096


def _refused_format(data: bytes) -> str | None:
    """The name of the well-known image format we do not accept that `data` starts as."""
    head = data[:16]
    for name, signature in _REFUSED_SIGNATURES:
        if signature.match(head):
            return name
    text = data[:_SVG_HEAD_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!")) and b"<svg" in text):
        return "SVG"
    return None


def _load(image: Image.Image) -> None:
    with _damage_is_not_an_image("the image data is damaged or truncated"):
        image.load()


@contextmanager
def _damage_is_not_an_image(what: str) -> Iterator[None]:
    """Pillow's decoders raise OSError, ValueError, SyntaxError, EOFError, and (AVIF)
    RuntimeError on damaged input, as the fuzz tests found: all of them mean the bytes are
    not a usable image."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from None
    except Exception as exc:
        raise NotAnImage(f"{what}: {exc}") from None
