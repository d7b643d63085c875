"""Start MiniStack (run with the emulator's own Python, `.ministack-venv/bin/python`).

One correction, to AWS's documented behaviour: CloudFormation's `BinaryMediaTypes` escapes
`/` as `~1` (`image~1png`), and API Gateway reads `image/png`. MiniStack keeps the escape,
so no request body would count as binary. This module decodes it where MiniStack matches.
Nothing else of MiniStack is changed.
"""

from __future__ import annotations

from typing import Any

import ministack.services.apigateway_v1 as gateway  # type: ignore[import-not-found]
from ministack.app import main  # type: ignore[import-not-found]

_matches = gateway._media_type_matches


def _decoded(patterns: list[str] | None) -> list[str]:
    return [pattern.replace("~1", "/").replace("~0", "~") for pattern in patterns or []]


def _media_type_matches(media_type: Any, patterns: list[str] | None) -> bool:
    return bool(_matches(media_type, _decoded(patterns)))


gateway._media_type_matches = _media_type_matches

if __name__ == "__main__":
    main()
