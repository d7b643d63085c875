"""The cost table as markdown or text, its inputs line, and the price table of docs/COST.md."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tools.costs.inputs import Measured, Workload
from tools.costs.model import Row
from tools.costs.prices import Prices


def money(dollars: float | None) -> str:
    """Dollars to about three significant figures, without exponents."""
    if dollars is None:
        return "—"
    if dollars == 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(abs(dollars))))
    return f"${dollars:,.{decimals}f}"


def ratio_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.3g}x"


def inputs_line(results: str, prices: Prices, measured: Measured, workload: Workload) -> str:
    return (
        f"Inputs: {results} ({measured.model}: {measured.labeller_ms_per_image_one_thread:.3g} ms "
        f"per image on one thread, stream batch {measured.label_batch_size}, cold start "
        f"{measured.cold_start_s:.3g} s, peak RSS {measured.peak_rss_mb:.3g} MB, submit "
        f"{measured.submit_ms_p50:.3g} ms); {prices.region} list prices; labelling function "
        f"{workload.label_memory_mb:,} MB and API function {workload.api_memory_mb:,} MB, "
        f"{workload.architecture}; {workload.images_per_month:,} images a month; one cold start "
        f"per {workload.images_per_cold_start:,} images; {workload.reads_per_image} result "
        f"read(s) per image; SageMaker {workload.sagemaker_ms_per_image:g} ms per image."
    )


TABLE_HEADER = ("option", "item", "$ per 1,000 images", "$ a month", "vs Rekognition")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """The cells of each row; an option is named on its first row only."""
    options = [
        row.option if row.option != before.option else ""
        for before, row in zip([Row("", "", None), *rows], rows, strict=False)
    ]
    return [
        (option, row.item, money(row.per_1000), money(row.per_month), ratio_text(row.ratio))
        for option, row in zip(options, rows, strict=True)
    ]


def render_markdown(rows: Sequence[Row], inputs: str, note_lines: Sequence[str]) -> str:
    def bold(text: str, total: bool) -> str:
        return f"**{text}**" if total and text else text

    lines = [
        inputs,
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "|---|---|---:|---:|---:|",
    ]
    for row, cells in zip(rows, table_cells(rows), strict=True):
        shown = [cells[0], *(bold(cell, row.total) for cell in cells[1:])]
        lines.append("| " + " | ".join(shown) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in note_lines)
    return "\n".join(lines) + "\n"


def render_text(rows: Sequence[Row], inputs: str, note_lines: Sequence[str]) -> str:
    cells = [TABLE_HEADER, *table_cells(rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(TABLE_HEADER))]
    out = [inputs, ""]
    for line in cells:
        left = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        right = [cell.rjust(width) for cell, width in zip(line[2:], widths[2:], strict=True)]
        out.append("  ".join(left + right).rstrip())
    out.append("")
    out.extend(note_lines)
    return "\n".join(out) + "\n"


def render_price_table(prices: Prices) -> str:
    lines = ["| price | list price | unit used | source |", "|---|---|---|---|"]
    lines.extend(
        f"| {name} | {price.quoted} | {price.unit} | {price.source} |"
        for name, price in prices.listed()
    )
    return "\n".join(lines) + "\n"
