"""ImageNet-1k class names, shipped with the code (data/imagenet_classes.json).

The file holds the first name of each class as the original's label file has it
("French bulldog", "tabby", "espresso"); tests check it against the `imagenet-classes`
package it was written from (tools/model/write_class_names.py).
"""

from __future__ import annotations

import json
from functools import lru_cache

from chalicelib.config import PACKAGE_DIR

CLASS_NAMES_FILE = PACKAGE_DIR / "data" / "imagenet_classes.json"


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    names = json.loads(CLASS_NAMES_FILE.read_text(encoding="utf-8"))
    return tuple(names)
