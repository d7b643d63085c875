"""Benchmarks that print figures (not timed tests): `make bench`.

- labeller: ms per image at batch 1 and 8, model only (preprocessed tensors) and end to
  end (decode + preprocess + inference) on real photos;
- local mode: submit-to-CLASSIFIED seconds for one image (median of 20), through the real
  `chalice local` process;
- peak resident memory of that server process after 50 images.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib import imaging  # noqa: E402
from chalicelib.adapters.onnx import CROP_FRACTION, INPUT_SIZE, OnnxLabeller  # noqa: E402
from chalicelib.config import DEFAULT_MODEL_PATH, Limits  # noqa: E402
from tests.support import PHOTO_FILES, jpeg_variant, photo_jpeg, photo_png  # noqa: E402
from tests.system.chalice_local import ChaliceLocal  # noqa: E402


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def photos(count: int) -> list[bytes]:
    pool = [photo_png(name) for name in PHOTO_FILES] + [photo_jpeg(name) for name in PHOTO_FILES]
    return [pool[i % len(pool)] for i in range(count)]


def labeller_figures(repeats: int) -> list[tuple[str, float]]:
    labeller = OnnxLabeller(DEFAULT_MODEL_PATH, Limits().max_image_pixels)
    rows = []
    for batch in (1, 8):
        images = photos(batch)
        decoded = [imaging.decode_rgb(data, 10**8, 256) for data in images]
        tensor = imaging.preprocess(decoded, INPUT_SIZE, CROP_FRACTION)
        model_only = median_seconds(functools.partial(labeller.infer, tensor), repeats)
        end_to_end = median_seconds(functools.partial(labeller.label, images, 5), repeats)
        rows.append((f"model only, batch {batch} (ms/image)", 1000 * model_only / batch))
        rows.append(
            (f"decode+preprocess+model, batch {batch} (ms/image)", 1000 * end_to_end / batch)
        )
    return rows


def submit_and_wait(base_url: str, data: bytes) -> float:
    started = time.perf_counter()
    response = requests.post(
        f"{base_url}/images", data=data, headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    response.raise_for_status()
    image_id = response.json()["image_id"]
    while True:
        status = requests.get(f"{base_url}/images/{image_id}", timeout=30).json()["status"]
        if status != "NOT_CLASSIFIED":
            if status != "CLASSIFIED":
                raise RuntimeError(f"image {image_id} ended {status}")
            return time.perf_counter() - started
        time.sleep(0.005)


def photo_jpeg_of(data: bytes) -> bytes:
    """The photo as JPEG (variants are made by adding a JPEG comment)."""
    if data[:2] == b"\xff\xd8":
        return data
    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=90)
        return buffer.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def local_mode_figures(singles: int, total_images: int) -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        server = ChaliceLocal(Path(folder) / "data", Path(folder) / "chalice.log").start()
        try:
            # New bytes every time: the same bytes twice would be answered from the first.
            data = photo_jpeg("coffee")
            submit_and_wait(server.base_url, jpeg_variant(data, 0))  # loads the model
            latencies = [
                submit_and_wait(server.base_url, jpeg_variant(data, n + 1)) for n in range(singles)
            ]
            for n, image in enumerate(photos(total_images - singles - 1)):
                submit_and_wait(server.base_url, jpeg_variant(photo_jpeg_of(image), 1000 + n))
            memory = peak_rss_mb(server.pid)
        finally:
            server.stop()
    return [
        (
            f"submit to CLASSIFIED, one image, median of {singles} (ms)",
            1000 * statistics.median(latencies),
        ),
        (f"submit to CLASSIFIED, one image, max of {singles} (ms)", 1000 * max(latencies)),
        (f"local server peak RSS after {total_images} images (MB)", memory),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--singles", type=int, default=20)
    args = parser.parse_args(argv)
    rows = labeller_figures(args.repeats) + local_mode_figures(args.singles, 50)
    width = max(len(name) for name, _ in rows)
    print(f"{'figure'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
