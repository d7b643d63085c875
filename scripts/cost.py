"""Dollars per 1,000 images on AWS: the in-Lambda ONNX labeller, the SageMaker endpoint and
Rekognition DetectLabels, from the figures `make bench` measures (docs/COST.md explains
every formula, price and count).

    .venv/bin/python scripts/cost.py                            # the table, for a terminal
    .venv/bin/python scripts/cost.py --markdown                 # the same table in markdown
    .venv/bin/python scripts/cost.py --write-doc docs/COST.md   # refresh the doc's table
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.bench.markers import MissingMarkersError, replace_between  # noqa: E402
from tools.costs.inputs import CostInputError, Workload, load_measured, stage_memory  # noqa: E402
from tools.costs.model import cost_rows, notes  # noqa: E402
from tools.costs.prices import US_WEST_2  # noqa: E402
from tools.costs.render import inputs_line, render_markdown, render_text  # noqa: E402
from tools.costs.requests import representative_item_sizes  # noqa: E402

DEFAULT_RESULTS = ROOT / "docs" / "performance.json"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
DEFAULT_STAGE = "prod-ca-central-1"
MARKER_START = "<!-- cost-table:start -->"
MARKER_END = "<!-- cost-table:end -->"


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="make bench's JSON")
    parser.add_argument("--stage", default=DEFAULT_STAGE, help="whose memory sizes to read")
    parser.add_argument("--memory-mb", type=int, help="labelling function memory")
    parser.add_argument("--images-per-month", type=int, default=Workload.images_per_month)
    parser.add_argument("--images-per-cold-start", type=int, default=Workload.images_per_cold_start)
    parser.add_argument("--reads-per-image", type=int, default=Workload.reads_per_image)
    parser.add_argument(
        "--sagemaker-ms-per-image", type=float, default=Workload.sagemaker_ms_per_image
    )
    parser.add_argument("--architecture", choices=("x86_64", "arm64"), default="x86_64")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--write-doc", type=Path, help="put the markdown table in this doc")
    return parser.parse_args(list(argv))


def workload_from(arguments: argparse.Namespace) -> Workload:
    label_mb, api_mb = stage_memory(CHALICE_CONFIG, arguments.stage)
    workload = Workload(
        images_per_month=arguments.images_per_month,
        label_memory_mb=arguments.memory_mb or label_mb,
        api_memory_mb=api_mb,
        architecture=arguments.architecture,
        images_per_cold_start=arguments.images_per_cold_start,
        reads_per_image=arguments.reads_per_image,
        sagemaker_ms_per_image=arguments.sagemaker_ms_per_image,
    )
    positive = {
        "--memory-mb": workload.label_memory_mb,
        "--images-per-month": workload.images_per_month,
        "--images-per-cold-start": workload.images_per_cold_start,
        "--sagemaker-ms-per-image": workload.sagemaker_ms_per_image,
    }
    for option, value in positive.items():
        if value <= 0:
            raise CostInputError(f"{option} must be more than 0, not {value:g}")
    if workload.reads_per_image < 0:
        raise CostInputError("--reads-per-image must be at least 0")
    return workload


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def report(arguments: argparse.Namespace, markdown: bool) -> str:
    measured = load_measured(arguments.results)
    workload = workload_from(arguments)
    rows = cost_rows(US_WEST_2, measured, workload, representative_item_sizes())
    inputs = inputs_line(shown_path(arguments.results), US_WEST_2, measured, workload)
    render = render_markdown if markdown else render_text
    return render(rows, inputs, notes(US_WEST_2, measured, workload))


def main(argv: Sequence[str]) -> int:
    arguments = parse_arguments(argv)
    try:
        if arguments.write_doc is not None:
            table = report(arguments, markdown=True)
            document = arguments.write_doc.read_text()
            updated = replace_between(document, table, MARKER_START, MARKER_END)
            arguments.write_doc.write_text(updated)
            print(f"wrote the cost table into {arguments.write_doc}")
        else:
            print(report(arguments, markdown=arguments.markdown), end="")
    except (CostInputError, MissingMarkersError, OSError) as error:
        print(f"cost.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
