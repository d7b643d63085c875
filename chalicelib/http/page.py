"""The two static answers: the OpenAPI document and the page to try the API.

Both files ship in chalicelib/ and are read once per process. The page is one HTML file with
its CSS and JS inline; its Content-Security-Policy allows exactly those inline blocks (by
hash) and nothing from elsewhere, except the images a user asks to see.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from chalice.app import Response

HERE = Path(__file__).resolve().parent
OPENAPI_PATH = HERE / "openapi.json"
HOME_PAGE_PATH = HERE / "web" / "index.html"

_INLINE_BLOCK = r"<{tag}>(.*?)</{tag}>"


@functools.cache
def openapi_text() -> str:
    return OPENAPI_PATH.read_text(encoding="utf-8")


@functools.cache
def home_page_text() -> str:
    return HOME_PAGE_PATH.read_text(encoding="utf-8")


def inline_hashes(html: str, tag: str) -> list[str]:
    """CSP source expressions ('sha256-...') for each bare <script> or <style> block."""
    blocks = re.findall(_INLINE_BLOCK.format(tag=tag), html, flags=re.DOTALL)
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(block.encode('utf-8')).digest()).decode()}'"
        for block in blocks
    ]


@functools.cache
def home_page_policy() -> str:
    html = home_page_text()
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(inline_hashes(html, 'script'))}",
            f"style-src {' '.join(inline_hashes(html, 'style'))}",
            # The preview shows a chosen file (blob:) or the image URL the user submitted.
            "img-src 'self' blob: data: http: https:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def home_page() -> Response:
    return Response(
        body=home_page_text(),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": home_page_policy(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def openapi_document() -> Response:
    return Response(
        body=openapi_text(),
        status_code=200,
        headers={"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
    )
