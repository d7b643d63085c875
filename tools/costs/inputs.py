"""The inputs of the cost model: the figures `make bench` measured (docs/performance.json),
the stage's memory sizes (.chalice/config.json) and the workload's assumptions."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FALLBACK_LABEL_MEMORY_MB = 2048
FALLBACK_API_MEMORY_MB = 1024


class CostInputError(Exception):
    """An input the cost model cannot use: the results file or a command-line option."""


@dataclass(frozen=True)
class Measured:
    """What `make bench` measured (docs/performance.json)."""

    model: str
    labeller_ms_per_image_one_thread: float
    label_batch_size: int
    cold_start_s: float
    peak_rss_mb: float
    submit_ms_p50: float


REQUIRED_KEYS = {
    "labeller_ms_per_image_one_thread": float,
    "label_batch_size": int,
    "cold_start_s": float,
    "peak_rss_mb": float,
    "submit_ms_p50": float,
    "model": str,
}


@dataclass(frozen=True)
class Workload:
    """What the prices are applied to: the deployment, the traffic, and the assumptions that
    no benchmark measures (each is named in docs/COST.md)."""

    images_per_month: int = 100_000
    label_memory_mb: int = FALLBACK_LABEL_MEMORY_MB
    api_memory_mb: int = FALLBACK_API_MEMORY_MB
    architecture: str = "x86_64"
    images_per_cold_start: int = 1000
    reads_per_image: int = 1  # GET /images/{id} until the labels are there
    # Assumed: milliseconds waiting on AWS, which a local benchmark cannot measure.
    label_io_ms_per_image: float = 55.0  # GetItem, S3 GET, TransactWriteItems, GetItem
    submit_io_ms: float = 60.0  # Query, S3 PUT, PutItem
    read_ms: float = 10.0  # one GET /images/{id}: a GetItem
    stored_image_kb: float = 250.0
    # Assumed for the JumpStart Inception V3 endpoint (replace with its ModelLatency).
    sagemaker_ms_per_image: float = 150.0
    sagemaker_kb_per_image: float = 100.0  # the JPEG sent plus the 1,001 scores returned
    sagemaker_instances: int = 1


def measured_from(results: Mapping[str, object], source: str) -> Measured:
    """The measured figures, or CostInputError naming every key missing or unusable."""
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise CostInputError(
            f"{source} lacks {', '.join(repr(key) for key in missing)}: "
            "run `make bench` to write it, or pass --results PATH"
        )
    for key, kind in REQUIRED_KEYS.items():
        value = results[key]
        if not _is_kind(value, kind):
            raise CostInputError(f"{source}: {key!r} must be {_kind_name(kind)}, not {value!r}")
    batch = results["label_batch_size"]
    assert isinstance(batch, int)
    if batch < 1:
        raise CostInputError(f"{source}: 'label_batch_size' must be at least 1, not {batch}")
    return Measured(
        model=str(results["model"]),
        labeller_ms_per_image_one_thread=_number(results, "labeller_ms_per_image_one_thread"),
        label_batch_size=batch,
        cold_start_s=_number(results, "cold_start_s"),
        peak_rss_mb=_number(results, "peak_rss_mb"),
        submit_ms_p50=_number(results, "submit_ms_p50"),
    )


def _is_kind(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value) and value >= 0
    if kind is int:
        return isinstance(value, int)
    return isinstance(value, str) and bool(value.strip())


def _kind_name(kind: type) -> str:
    return {float: "a number of at least 0", int: "an integer", str: "a non-empty string"}[kind]


def _number(results: Mapping[str, object], key: str) -> float:
    value = results[key]
    assert isinstance(value, int | float)
    return float(value)


def load_measured(path: Path) -> Measured:
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise CostInputError(
            f"{path} does not exist: run `make bench` to write it, or pass --results PATH"
        ) from None
    except (OSError, ValueError) as error:
        raise CostInputError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(results, dict):
        raise CostInputError(f"{path} must hold a JSON object")
    return measured_from(results, str(path))


def stage_memory(config_path: Path, stage: str) -> tuple[int, int]:
    """(label_new_images MB, api_handler MB) of a stage in .chalice/config.json; the
    fallbacks when the file, the stage or the setting is absent."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return FALLBACK_LABEL_MEMORY_MB, FALLBACK_API_MEMORY_MB
    functions = config.get("stages", {}).get(stage, {}).get("lambda_functions", {})

    def memory(function: str, fallback: int) -> int:
        value = functions.get(function, {}).get("lambda_memory_size", fallback)
        return value if isinstance(value, int) and not isinstance(value, bool) else fallback

    return (
        memory("label_new_images", FALLBACK_LABEL_MEMORY_MB),
        memory("api_handler", FALLBACK_API_MEMORY_MB),
    )
