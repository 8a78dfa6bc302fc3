"""`mailticket report` as the manager meets it: bad input, an empty period, `--mail` through the SMTP
sink (one mail to the manager, text and HTML parts, the text part's figures equal to `--format json`),
the HTML in Chromium at 800 and 390 px, and the daemon's scheduled weekly report."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness import REPO, run_cli, write_config
from tests.test_report_figures import store_tickets

ARTIFACTS = REPO / "tests" / "artifacts"
MANAGER = "boss@example.com"


@pytest.fixture
def config_path(tmp_path, db_url, smtp_sink):
    return write_config(tmp_path, db_url=db_url, sink=smtp_sink, listener_port=2525,
                        extra={"service": {"manager_address": MANAGER}})


@pytest.fixture
def filled(config_path, db_url):
    from mailticket import db
    db.connect(db_url)
    store_tickets()
    return config_path


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, message", [
    (("--since", "2026-11-09", "--until", "2026-11-02"), "is not before --until"),
    (("--since", "2026-11-02", "--until", "2026-11-02"), "the period is empty"),
    (("--since", "01/11/2026"), "is not an ISO date like 2026-11-01"),
    (("--until", "2026-11-2"), "argument --until: '2026-11-2' is not an ISO date"),
    (("--since", "2026-02-30"), "is not a date in the calendar"),
    (("--since", "2026-11-02T08:00"), "is not an ISO date"),
    (("--by", "colour"), "'colour' is not a group; valid: priority, tier, category, type, agent"),
    (("--by", "tier,team"), "'team' is not a group"),
    (("--format", "pdf"), "invalid choice: 'pdf'"),
])
def test_usage_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    path = write_config(tmp_path, listener_port=2525)
    result = run_cli("report", *args, config=path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_a_period_without_tickets_says_so(config_path):
    text = run_cli("report", "--since", "2020-01-01", "--until", "2020-02-01", config=config_path)
    assert text.returncode == 0, text.stderr
    assert "No tickets were created in this period." in text.stdout
    assert "First responses within target:      - (0 of 0)" in text.stdout
    data = json.loads(run_cli("report", "--since", "2020-01-01", "--until", "2020-02-01", "--format", "json",
                              config=config_path).stdout)
    assert data["empty"] is True and data["overall"]["tickets"] == 0
    assert data["overall"]["first_response"]["share_within_target"] is None
    assert data["overall"]["satisfaction"]["mean"] is None and data["average_resolution"]["met"] is None
    html = run_cli("report", "--since", "2020-01-01", "--until", "2020-02-01", "--format", "html", config=config_path)
    assert "No tickets were created in this period." in html.stdout
    csv = run_cli("report", "--since", "2020-01-01", "--until", "2020-02-01", "--format", "csv", config=config_path)
    assert csv.stdout.splitlines()[1].startswith("all,all,0,0,0,0,,")


def test_the_text_report_is_in_the_service_language(tmp_path):
    path = write_config(tmp_path, listener_port=2525, extra={"service": {"locale": "sv"}})
    result = run_cli("report", "--since", "2020-01-01", "--until", "2020-02-01", config=path)
    assert "Inga ärenden skapades under perioden." in result.stdout
    assert "Första svar inom målet:" in result.stdout


# ---------------------------------------------------------------- report --mail

LINES = {  # the text part's line -> how its numbers are made from the JSON figures
    "Tickets:": lambda s: [s["overall"]["tickets"]],
    "First responses within target:": lambda s: [_pct(s["overall"]["first_response"]["share_within_target"]),
                                                 s["overall"]["first_response"]["within_target"],
                                                 s["overall"]["first_response"]["measured"]],
    "First response, median:": lambda s: [_h(s["overall"]["first_response"]["median"])],
    "First response, mean:": lambda s: [_h(s["overall"]["first_response"]["mean"])],
    "Resolution, mean (incidents):": lambda s: [_h(s["average_resolution"]["mean"]),
                                                s["average_resolution"]["incidents"],
                                                _h(s["average_resolution"]["target"])],
    "Breaches:": lambda s: [len(s["breaches"])],
    "Escalations from tier 1/2/3:": lambda s: [s["overall"]["escalations"][f"tier{n}"] for n in (1, 2, 3)],
    "First-contact resolution:": lambda s: [_pct(s["overall"]["first_contact_resolution"]["share"]),
                                            s["overall"]["first_contact_resolution"]["first_contact"],
                                            s["overall"]["first_contact_resolution"]["resolved"]],
    "Reopen rate:": lambda s: [_pct(s["overall"]["reopen"]["rate"]), s["overall"]["reopen"]["reopened"],
                               s["overall"]["reopen"]["resolved"]],
    "Satisfaction, mean (1-5):": lambda s: [round(s["overall"]["satisfaction"]["mean"], 2)],
    "Satisfaction answered:": lambda s: [_pct(s["overall"]["satisfaction"]["share_answered"]),
                                         s["overall"]["satisfaction"]["answered"],
                                         s["overall"]["satisfaction"]["asked"]],
    "Open at the end of the period:": lambda s: [s["backlog"]["open"]],
}


def _pct(share):
    return round(share * 100, 1)


def _h(seconds):
    return round(seconds / 3600, 2)


def _numbers(line: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", line.split(":", 1)[1])]


def test_report_mail_goes_to_the_manager_with_the_figures_of_the_json(filled, smtp_sink):
    period = ("--since", "2026-11-02", "--until", "2026-11-09")
    queued = run_cli("report", *period, "--mail", config=filled)
    assert queued.returncode == 0, queued.stderr
    assert MANAGER in queued.stdout
    sent = run_cli("poll", "--once", config=filled)
    assert sent.returncode == 0, sent.stderr
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == [MANAGER]
    msg = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert "report 2026-11-02 - 2026-11-09" in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative" and not msg.defects
    assert msg["From"].addresses[0].addr_spec == "support@example.com" and msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Mailticket-Loop"] == "support@example.com" and msg["Reply-To"] is None
    assert msg["X-Mailticket-Ticket"] is None and msg["Message-ID"].startswith("<mt.")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "<script" not in html.lower() and "<img" not in html.lower()
    figures = json.loads(run_cli("report", *period, "--format", "json", config=filled).stdout)
    found = {label: _numbers(line) for line in text.splitlines() for label in LINES if line.startswith(label)}
    assert found.keys() == LINES.keys()
    for label, expected in LINES.items():
        assert found[label] == [float(x) for x in expected(figures)], label
    assert found["Tickets:"] == [16.0] and found["Breaches:"] == [7.0]  # the hand-worked set
    assert smtp_sink.received == [mail]  # one mail


# ---------------------------------------------------------------- the HTML in Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("locale", ["en", "sv"])
def test_report_html_screenshots_at_800_and_390_px(tmp_path, db_url, locale):
    from mailticket import db
    path = write_config(tmp_path, db_url=db_url, listener_port=2525, extra={"service": {"locale": locale}})
    db.connect(db_url)
    store_tickets()
    html = run_cli("report", "--since", "2026-10-01", "--until", "2026-11-09", "--format", "html", config=path)
    assert html.returncode == 0, html.stderr
    page = tmp_path / f"report_{locale}.html"
    page.write_text(html.stdout, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (800, 390):
        shot = ARTIFACTS / f"report_{locale}_{width}.png"
        shot.unlink(missing_ok=True)
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
                        f"--window-size={width},2600", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
        assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------- the scheduled report

def test_the_weekly_report_is_queued_once_when_its_moment_has_come(filled, smtp_sink):
    """Monday 2026-11-09 08:00 local has come: the weekly report of 2 .. 9 November goes out, once,
    also when a second daemon (or a restart) looks again."""
    from mailticket.clock import FakeClock
    from mailticket.config import load_config
    from mailticket.desk import reporting
    from mailticket.models import KeyValue, Outbox
    from mailticket.service.wiring import build_desk
    config = load_config(filled)
    import dataclasses
    from mailticket.desk.reportschedule import load_reports
    config = dataclasses.replace(config, reports=load_reports({"weekly": "monday 08:00"}, "t.toml"))
    desk = build_desk(config, clock=FakeClock(datetime(2026, 11, 9, 7, 30, tzinfo=UTC)))
    assert reporting.send_scheduled(desk, datetime(2026, 11, 9, 6, 59, tzinfo=UTC)) == []  # 07:59 local
    assert reporting.send_scheduled(desk, datetime(2026, 11, 9, 7, 30, tzinfo=UTC)) == ["report:weekly:2026-11-09"]
    assert reporting.send_scheduled(desk, datetime(2026, 11, 9, 9, 0, tzinfo=UTC)) == []
    [entry] = list(Outbox.select().where(Outbox.kind == "manager_report"))
    assert entry.recipients == [MANAGER]
    assert KeyValue.get_by_id("report:weekly:2026-11-09").value == MANAGER
    raw = desk.mailer.mail_bytes(entry)
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert text.startswith("Weekly report: tickets created from 2026-11-02 until 2026-11-09")
    assert "Tickets:                            16" in text


def test_the_daemons_sla_check_sends_the_scheduled_report(tmp_path, smtp_sink):
    """The daemon's periodic SLA check is what sends it: once its moment has come, once."""
    from mailticket import db
    from mailticket.clock import FakeClock
    from mailticket.config import load_config
    from mailticket.models import Outbox
    from mailticket.service.daemon import Daemon
    from mailticket.service.wiring import build_desk
    path = write_config(tmp_path, sink=smtp_sink, listener_port=2525,
                        extra={"service": {"manager_address": MANAGER, "locale": "sv"},
                               "reports": {"monthly": "1 08:00"}})
    config = load_config(path)
    db.connect(config.database.url)
    clock = FakeClock(datetime(2026, 12, 1, 6, 59, tzinfo=UTC))  # 07:59 in Stockholm
    daemon = Daemon(build_desk(config, clock=clock))
    daemon.check_clocks()
    assert not Outbox.select().where(Outbox.kind == "manager_report").exists()
    clock.advance(120)
    daemon.check_clocks()
    daemon.check_clocks()
    [entry] = Outbox.select().where(Outbox.kind == "manager_report")
    mail = email.message_from_bytes(daemon.desk.mailer.mail_bytes(entry), policy=email.policy.default)
    assert mail["Subject"] == "Service Desk: månadsrapport 2026-11-01 – 2026-12-01"
    assert "Inga ärenden skapades under perioden." in mail.get_body(("plain",)).get_content()
