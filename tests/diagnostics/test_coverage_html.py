"""coverage --format html: self-contained, escaped, and the same figures as --json in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from credly_connector.diagnostics.coverage import build_report
from credly_connector.diagnostics.coverage_html import render_html
from tests.diagnostics.explain_support import Tenant, synced_tenant
from tests.diagnostics.test_coverage import NOW, _badge, _mailboxes, _user


class _Figures(HTMLParser):
    """The data- attributes of the page's stages, causes and unmatched addresses."""

    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.stages: dict[str, int] = {}
        self.widths: list[float] = []
        self.causes: dict[str, int] = {}
        self.unmatched: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.root = found
        elif tag == "g" and found.get("class") == "stage":
            self.stages[str(found["data-stage"])] = int(str(found["data-badges"]))
        elif tag == "rect" and found.get("class") == "bar":
            self.widths.append(float(str(found["width"])))
        elif tag == "tr" and found.get("class") == "cause":
            self.causes[str(found["data-cause"])] = int(str(found["data-badges"]))
        elif tag == "tr" and found.get("class") == "unmatched":
            self.unmatched[str(found["data-email"])] = int(str(found["data-badges"]))


def _figures(page: str) -> _Figures:
    parser = _Figures()
    parser.feed(page)
    return parser


def test_page_is_self_contained_and_escapes_every_value() -> None:
    ann = _user("ann@contoso.com")
    hostile = '"><script>alert(1)</script>@evil.example'
    report = build_report(
        org_id="<b>org</b>",
        badges=[_badge("1", "ann@contoso.com"), _badge("2", hostile, issued_to="<i>x</i>")],
        users=[ann],
        items=None,
        now=NOW,
        mailboxes=_mailboxes(ann),
    )
    page = render_html(report)
    assert "<script>alert" not in page and "<b>org</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Nothing to fetch: no src/href, no CSS url() or @import, no http(s) URL but SVG's namespace.
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"]
    figures = _figures(page)
    assert figures.stages == report.funnel
    assert figures.causes == report.causes
    assert figures.unmatched == {hostile.lower(): 1}


def test_bars_are_drawn_to_scale() -> None:
    users = [_user(f"u{i}@contoso.com") for i in range(4)]
    badges = [_badge(str(i), f"u{i}@contoso.com") for i in range(4)]
    badges.append(_badge("9", "u0@contoso.com", state="pending"))
    report = build_report(
        org_id="o", badges=badges, users=users, items=None, now=NOW, mailboxes=_mailboxes(*users)
    )
    figures = _figures(render_html(report))
    issued = report.funnel["issued"]
    widths = dict(zip(figures.stages, figures.widths, strict=True))
    for stage, count in report.funnel.items():
        assert widths[stage] == pytest.approx(widths["issued"] * count / issued, abs=0.01)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium) to render the page")
    return found


def _dump_dom(browser: str, page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,  # a loaded machine starts Chromium slowly
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    yield from synced_tenant(tmp_path_factory.mktemp("coverage-html"))


@pytest.mark.integration
def test_chromium_renders_the_page_with_the_json_figures(tenant: Tenant, tmp_path: Path) -> None:
    browser = _chromium()
    result = tenant.invoke("coverage", "--format", "html")
    assert result.exit_code == 0, result.stderr
    page = tmp_path / "coverage.html"
    page.write_text(result.stdout, encoding="utf-8")
    rendered = _figures(_dump_dom(browser, page))
    _, document = tenant.json("coverage")
    # The inline script ran (it counts the funnel's bars once the page is rendered).
    assert rendered.root.get("data-rendered") == str(len(document["funnel"]))
    assert rendered.stages == {f["stage"]: f["badges"] for f in document["funnel"]}
    assert rendered.causes == {c["cause"]: c["badges"] for c in document["causes"]}
    assert rendered.unmatched == {u["email"]: u["badges"] for u in document["unmatched_emails"]}
    assert rendered.unmatched  # the demo has addresses that match no user
