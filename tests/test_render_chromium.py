"""Every HTML mail, in both locales, laid out by headless Chromium (Debian's ``chromium``).

One browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``),
which takes seconds for all mails where one ``--screenshot`` run per mail took a minute.
Screenshots go to tests/artifacts/ (git-ignored) for a person to look at. Checked for each
mail: no script error, console error or failed load; no request other than the mail file
itself (so no external image); a real screenshot of an 800×1000 window; and nothing wider
than a phone-sized window.
"""

import base64
import fcntl
import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from mailticket.outbound.render import LOCALES, TEMPLATE_NAMES, Renderer
from mailticket.outbound.template_context import sample_context

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
WINDOW = (800, 1000)
NARROW = 400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]
CASES = [(name, locale) for name in TEMPLATE_NAMES for locale in LOCALES]

pytestmark = pytest.mark.timeout(900)


class Browser:
    """Headless Chromium spoken to over the DevTools protocol on file descriptors 3 and 4."""

    def __init__(self, executable: Path, profile: str):
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()

        def wire_pipes():  # the child reads commands on fd 3 and writes answers on fd 4
            commands, answers = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child))
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        # close_fds=False keeps fds 3 and 4 (made by dup2, so inheritable); every other fd of
        # ours is non-inheritable and does not reach the child
        self.process = subprocess.Popen([str(executable), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        preexec_fn=wire_pipes, close_fds=False,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._reader = os.fdopen(self._from_browser, "rb")
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self._targets: dict[str, str] = {}

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = self._reader.read1(65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read_message()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, session: str) -> None:
        while not any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            self.events.append(self._read_message())

    def open_page(self) -> str:
        """A new tab with the events we check switched on; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self._targets[session] = target
        return session

    def close_page(self, session: str) -> None:
        self.send("Target.closeTarget", {"targetId": self._targets.pop(session)})
        self.events = [e for e in self.events if e.get("sessionId") != session]

    def load(self, session: str, url: str, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        self.send("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session)

    def screenshot(self, session: str, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True}, session)["data"]
        path.write_bytes(base64.b64decode(data))

    def evaluate(self, session: str, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                         session)["result"]["value"]

    def problems(self, session: str, page_url: str) -> list[str]:
        """Script errors, console errors, failed loads and requests for anything but the page."""
        found = []
        for event in (e for e in self.events if e.get("sessionId") == session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"script error: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(f"console {params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent" and params["request"]["url"] != page_url:
                found.append(f"request for {params['request']['url']}")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.close()
        os.close(self._to_browser)


def _install_chromium() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if command[1] == "install" and result.returncode == 0:
            return


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, installed when missing and we are root; otherwise the tests skip
    (or fail when the CI environment variable is set)."""
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        _install_chromium()
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package to run the layout tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="mailticket-chromium-") as profile:
        chromium = Browser(CHROMIUM, profile)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict:
    """Each mail's HTML written to a file: {(name, locale): path}."""
    folder = tmp_path_factory.mktemp("mails")
    renderer = Renderer(strict=True)
    written = {}
    for name, locale in CASES:
        path = folder / f"{name}-{locale}.html"
        path.write_text(renderer.render(name, locale, sample_context(name)).html, encoding="utf-8")
        written[(name, locale)] = path
    return written


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def tab(browser):
    """A fresh browser tab (its session id), closed after the test."""
    session = browser.open_page()
    yield session
    browser.close_page(session)


@pytest.mark.parametrize("name,locale", CASES)
def test_mail_lays_out_without_errors(browser, tab, pages, name, locale):
    url = pages[(name, locale)].as_uri()
    browser.load(tab, url, *WINDOW)
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / f"{name}-{locale}.png"
    browser.screenshot(tab, png)
    assert png_size(png) == WINDOW
    assert png.stat().st_size > 15_000, "the screenshot is (nearly) blank"
    assert browser.evaluate(tab, "document.querySelectorAll('table').length") >= 2
    assert browser.problems(tab, url) == []
    # and on a phone-sized window nothing sticks out sideways
    browser.load(tab, url, NARROW, 800)
    width = browser.evaluate(tab, "document.documentElement.scrollWidth")
    assert width <= NARROW, f"{name} ({locale}) is {width}px wide in a {NARROW}px window"
    assert browser.problems(tab, url) == []


def test_the_checks_catch_a_broken_page(browser, tab, tmp_path):
    """Not blind: a script error, a missing image, an external image and a too-wide table all show."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="missing.png"><img src="https://example.com/x.png">'
                    '<table width="900"><tr><td>wide</td></tr></table>'
                    '<script>nosuchfunction()</script></body></html>')
    browser.load(tab, page.as_uri(), NARROW, 800)
    problems = browser.problems(tab, page.as_uri())
    assert any(p.startswith("script error") for p in problems)
    assert any("missing.png" in p for p in problems)
    assert any("https://example.com/x.png" in p for p in problems)
    assert browser.evaluate(tab, "document.documentElement.scrollWidth") > NARROW
