"""The page at `/`, in headless Chromium (Debian's, driven by Playwright) against the real
`chalice local`: choose or drop a photo, submit a URL, see a refusal, and the same page
under API Gateway's stage prefix."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, Route, expect, sync_playwright

from tests.support import EXPECTED_TOP_LABELS, loopback_server, photo_jpeg, photo_png
from tests.system.chalice_local import ChaliceLocal

CHROMIUM = Path("/usr/bin/chromium")
# Playwright adds --headless itself. Without the networking flags Chromium keeps trying
# to reach Google's services; even with them it looks up accounts.google.com, so its
# resolver answers "not found" for every name: the tests use 127.0.0.1 only.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
LABEL_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaliceLocal]:
    folder = tmp_path_factory.mktemp("web")
    local = ChaliceLocal(
        folder / "data", folder / "chalice.log", fetch_connect_timeout="1", fetch_total_timeout="5"
    ).start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium (make setup does)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1000, "height": 820},
        )
        yield context
        context.close()


class Watched:
    """A page, and what it asked for and complained about."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"console: {message.text}")
                if message.type == "error"
                else None
            ),
        )

    def requested_elsewhere(self, origin: str) -> list[str]:
        allowed = (origin + "/", "blob:", "data:")
        return [url for url in self.requests if not url.startswith(allowed)]


@pytest.fixture
def home(browser: BrowserContext, server: ChaliceLocal) -> Iterator[Watched]:
    page = browser.new_page()
    watched = Watched(page)
    answer = page.goto(f"{server.base_url}/")
    assert answer is not None and answer.status == 200, "GET / must answer the page"
    yield watched
    page.close()


def test_the_page_is_one_self_contained_html_file(server: ChaliceLocal, home: Watched) -> None:
    expect(home.page).to_have_title("ImageLabeller")
    expect(home.page.get_by_role("heading", name="Submit an image")).to_be_visible()
    answer = requests.get(f"{server.base_url}/", timeout=10)
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert home.requested_elsewhere(server.base_url) == []
    assert home.problems == []


def test_an_uploaded_photo_shows_its_labels_with_score_bars(
    server: ChaliceLocal, home: Watched, tmp_path: Path
) -> None:
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photo_png("coffee"))
    page = home.page

    page.get_by_label("Choose an image file").set_input_files(photo)

    first = page.locator("#labels li").first
    expect(first.locator(".label-name")).to_have_text("espresso", timeout=LABEL_TIMEOUT_MS)
    expect(first.locator(".label-score")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    score = float(first.locator(".label-score").inner_text().rstrip("%"))
    bar = first.locator(".bar").bounding_box()
    fill = first.locator(".bar-fill").bounding_box()
    assert bar is not None and fill is not None
    assert fill["width"] == pytest.approx(bar["width"] * score / 100, abs=2)
    assert page.locator("#labels li").count() == 5
    expect(page.locator("#preview")).to_be_visible()
    assert page.locator("#preview").evaluate("image => image.naturalWidth") == 600
    expect(page.get_by_role("status")).to_have_text("Labelled.")
    page.screenshot(path=tmp_path / "uploaded-photo.png", full_page=True)
    assert home.requested_elsewhere(server.base_url) == []
    assert home.problems == []


def test_a_dropped_photo_is_labelled_too(home: Watched) -> None:
    page = home.page
    transfer = page.evaluate_handle(
        """(encoded) => {
            const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "motorcycle.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        base64.b64encode(photo_jpeg("motorcycle")).decode(),
    )
    page.locator("#drop-zone").dispatch_event("drop", {"dataTransfer": transfer})

    expected = "|".join(sorted(EXPECTED_TOP_LABELS["motorcycle"]))
    expect(page.locator("#labels li .label-name").first).to_have_text(
        re.compile(f"^({expected})$"), timeout=LABEL_TIMEOUT_MS
    )
    expect(page.locator("#preview-caption")).to_contain_text("motorcycle.jpg")
    assert home.problems == []


def test_a_submitted_url_shows_its_labels(home: Watched, tmp_path: Path) -> None:
    page = home.page
    with loopback_server() as photos:
        url = photos.serve("/chelsea.png", photo_png("chelsea"))
        page.get_by_label("Image URL").fill(url)
        page.get_by_role("button", name="Label this URL").click()

        first = page.locator("#labels li").first
        expected = "|".join(sorted(EXPECTED_TOP_LABELS["chelsea"]))
        expect(first.locator(".label-name")).to_have_text(
            re.compile(f"^({expected})$"), timeout=LABEL_TIMEOUT_MS
        )
        expect(page.locator("#preview")).to_have_attribute("src", url)
        expect(page.locator("#details")).to_contain_text(url)
        page.screenshot(path=tmp_path / "submitted-url.png", full_page=True)
    assert home.problems == []


def test_a_refused_url_shows_why(server: ChaliceLocal, home: Watched, tmp_path: Path) -> None:
    refused = "file:///etc/passwd"
    answer = requests.post(f"{server.base_url}/images", json={"url": refused}, timeout=10)
    error = answer.json()["error"]
    page = home.page

    page.get_by_label("Image URL").fill(refused)
    page.get_by_label("Image URL").press("Enter")

    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(error["message"])
    expect(alert).to_contain_text(error["code"])
    expect(page.get_by_role("status")).to_have_text("Not accepted.")
    expect(page.locator("#labels li")).to_have_count(0)
    expect(page.locator("#preview")).to_be_hidden()
    page.screenshot(path=tmp_path / "refused-url.png", full_page=True)
    assert home.requested_elsewhere(server.base_url) == []
    # Chromium logs the 400 answer to the console; nothing else may go wrong.
    assert [problem for problem in home.problems if "400" not in problem] == []


def test_the_page_calls_the_api_under_api_gateways_stage_prefix(
    browser: BrowserContext, server: ChaliceLocal, tmp_path: Path
) -> None:
    """Deployed, the page is https://…/api (no trailing slash) and the API is under /api/."""
    stage = f"{server.base_url}/api"
    page = browser.new_page()
    watched = Watched(page)

    def through_the_stage(route: Route) -> None:
        local = server.base_url + route.request.url.removeprefix(stage)
        route.fulfill(response=route.fetch(url=local))

    page.route(re.compile(re.escape(stage) + r"(/.*)?$"), through_the_stage)
    answer = page.goto(stage)
    assert answer is not None and answer.status == 200, "GET / must answer the page"
    photo = tmp_path / "chelsea.png"
    photo.write_bytes(photo_png("chelsea"))
    page.get_by_label("Choose an image file").set_input_files(photo)

    expected = "|".join(sorted(EXPECTED_TOP_LABELS["chelsea"]))
    expect(page.locator("#labels li .label-name").first).to_have_text(
        re.compile(f"^({expected})$"), timeout=LABEL_TIMEOUT_MS
    )
    expect(page.locator("#spec-link")).to_have_attribute("href", "/api/openapi.json")
    api_calls = [url for url in watched.requests if not url.startswith(("blob:", "data:"))]
    assert api_calls[0] == stage
    assert all(url.startswith(stage + "/images") for url in api_calls[1:]), api_calls
    assert watched.problems == []
    page.close()
