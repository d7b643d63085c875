"""chalicelib/http/page.py: the two static answers and the page's Content-Security-Policy."""

from __future__ import annotations

import json
import re

from chalicelib.http import page as web


def test_the_home_page_is_utf8_html_with_a_strict_policy() -> None:
    response = web.home_page()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.body == web.HOME_PAGE_PATH.read_text(encoding="utf-8")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "'unsafe-inline'" not in policy
    assert "connect-src 'self'" in policy


def test_the_policy_allows_exactly_the_inline_script_and_style_by_hash() -> None:
    html = web.home_page_text()
    policy = dict(
        directive.split(" ", 1)
        for directive in web.home_page_policy().split("; ")
        if " " in directive
    )
    # Every <script> and <style> is a bare inline block the policy names; none loads a file.
    for tag in ("script", "style"):
        hashes = web.inline_hashes(html, tag)
        assert len(hashes) == html.count(f"<{tag}") == 1
        assert policy[f"{tag}-src"] == " ".join(hashes)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resource"


def test_the_openapi_document_is_served_as_json() -> None:
    response = web.openapi_document()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.body, str)
    assert json.loads(response.body)["openapi"] == "3.1.0"
