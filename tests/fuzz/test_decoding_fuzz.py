"""Fuzzing sniffing and decoding: hostile bytes may raise only our own domain errors.

A fixed number of derandomised cases runs in `make test`; raise FUZZ_EXAMPLES for a longer
run by hand (e.g. `FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/fuzz`).
"""

from __future__ import annotations

import contextlib
import io
import os
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from chalicelib.domain import imaging
from chalicelib.domain.errors import ImageLabellerError
from tests.support import encode

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
PIXEL_LIMIT = 2_000_000
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def seeds() -> tuple[bytes, ...]:
    """Small valid files of every accepted format and some modes, to mutate."""
    gradient = Image.linear_gradient("L").resize((48, 32)).convert("RGB")
    files = [encode(gradient, name) for name in imaging.ACCEPTED_FORMATS]
    files.append(encode(gradient.convert("P"), "PNG"))
    files.append(encode(gradient.convert("CMYK"), "JPEG"))
    files.append(encode(gradient.convert("LA"), "PNG"))
    frames = io.BytesIO()
    gradient.save(frames, "GIF", save_all=True, append_images=[gradient.rotate(90)])
    files.append(frames.getvalue())
    return tuple(files)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "header"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        else:  # the header holds sizes and offsets: the likeliest place to break a decoder
            header = min(len(data), 64)
            if header:
                data[draw(st.integers(0, header - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def only_domain_errors(data: bytes) -> None:
    for decode in (
        lambda: imaging.inspect_image(data, PIXEL_LIMIT),
        lambda: imaging.decode_rgb(data, PIXEL_LIMIT, min_short_side=256),
    ):
        with contextlib.suppress(ImageLabellerError):
            decode()


@FUZZ_SETTINGS
@given(mutated_images())
def test_mutated_images_raise_only_domain_errors(data: bytes) -> None:
    only_domain_errors(data)


@FUZZ_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_raise_only_domain_errors(data: bytes) -> None:
    only_domain_errors(data)


def test_decoded_mutants_are_rgb() -> None:
    # The property above may pass by refusing everything; this shows seeds decode.
    for data in seeds():
        assert imaging.decode_rgb(data, PIXEL_LIMIT).mode == "RGB"
