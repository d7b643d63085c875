"""Real photos (the ones scikit-image ships), each unique: a mix of sizes and formats from
thumbnails to 12 megapixels, and the web-sized set of issue 16 (451 to 741 px).

Unique bytes matter: the service answers the same bytes twice with the first image's id,
so a benchmark that repeated one file would measure deduplication, not labelling.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from PIL import Image

from tests.support import jpeg_with_comment

PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "retina.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "camera.png",
)
# Long sides in pixels: thumbnails, web images, and a phone camera's 12 megapixels.
LONG_SIDES = (480, 1024, 2048, 4032)
# The web-sized photos: those of PHOTOS whose own long side is 451 to 741 px.
WEB_LONG_SIDES = range(451, 742)


@dataclass(frozen=True)
class Photo:
    name: str
    format: str
    width: int
    height: int
    data: bytes


@cache
def base_photos() -> tuple[Photo, ...]:
    """Every photo at every long side as JPEG (quality 90), and at its own size as PNG."""
    made = []
    for name in PHOTOS:
        image = _own_size(name)
        made.append(_encoded(name, image, "PNG"))
        for long_side in LONG_SIDES:
            scale = long_side / max(image.size)
            size = (round(image.width * scale), round(image.height * scale))
            made.append(_encoded(name, image.resize(size, Image.Resampling.BICUBIC), "JPEG"))
    return tuple(made)


@cache
def base_web_photos() -> tuple[Photo, ...]:
    """The web-sized photos at their own size, each as PNG and as JPEG (quality 90): what
    issue 16 measured the script and the service on."""
    made: list[Photo] = []
    for name in PHOTOS:
        image = _own_size(name)
        if max(image.size) in WEB_LONG_SIDES:
            made.extend(_encoded(name, image, format_name) for format_name in ("PNG", "JPEG"))
    return tuple(made)


def web_photos(count: int, first: int = 0) -> list[Photo]:
    """`count` web-sized photos cycling through pictures and formats, variant numbers from
    `first` on."""
    pool = base_web_photos()
    return [unique_variant(pool[n % len(pool)], first + n, "web") for n in range(count)]


def mixed_photos(count: int, first: int = 0) -> list[Photo]:
    """`count` photos cycling through sizes and formats, variant numbers from `first` on."""
    pool = base_photos()
    return [unique_variant(pool[n % len(pool)], first + n) for n in range(count)]


# The sets by name, for the benchmarks' --photos.
PHOTO_SETS: dict[str, Callable[[int, int], list[Photo]]] = {
    "web": web_photos,
    "mixed": mixed_photos,
}


def small_jpeg(n: int) -> bytes:
    """A web-sized JPEG (coffee, 480 px), unique for every n, and never the bytes of a
    `mixed_photos` photo."""
    coffee = next(p for p in base_photos() if p.name == "coffee.png" and p.width == 480)
    return unique_variant(coffee, n, "small").data


def unique_variant(photo: Photo, n: int, series: str = "mixed") -> Photo:
    """The same picture with different bytes: a comment in a JPEG, a text chunk in a PNG."""
    note = f"benchmark {series} variant {n}".encode()
    if photo.format == "JPEG":
        data = jpeg_with_comment(photo.data, note)
    else:
        chunk_body = b"tEXt" + b"Comment\x00" + note
        chunk = struct.pack(">I", len(chunk_body) - 4) + chunk_body
        chunk += struct.pack(">I", zlib.crc32(chunk_body))
        end_of_header = 8 + 25  # signature, then the IHDR chunk (4 + 4 + 13 + 4 bytes)
        data = photo.data[:end_of_header] + chunk + photo.data[end_of_header:]
    return Photo(photo.name, photo.format, photo.width, photo.height, data)


def _own_size(name: str) -> Image.Image:
    with Image.open(io.BytesIO((resources.files("skimage.data") / name).read_bytes())) as raw:
        return raw.convert("RGB")


def _encoded(name: str, image: Image.Image, format_name: str) -> Photo:
    buffer = io.BytesIO()
    if format_name == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "PNG")
    return Photo(name, format_name, image.width, image.height, buffer.getvalue())
