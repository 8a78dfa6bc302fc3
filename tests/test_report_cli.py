"""`mailticket report` on a hand-checked data set in the database (SQLite and PostgreSQL).

Default targets, 24/7: P1 1h/4h, P2 2h/8h, P3 3h/24h, P4 3h/72h. The desk is in Europe/Stockholm
(UTC+1 in November), so `--since 2026-11-02` starts at 2026-11-01 23:00 UTC.

 #  prio tier category  type      status    first resp.  resolved                         notes
 1  P1   3    security  incident  closed    20 min       3 h
 2  P1   3    network   incident  resolved  2 h          6 h
 3  P2   2    network   incident  closed    1 h          10 h, 4 h of it pending -> 6 h
 4  P3   1    printing  request   closed    3 h          closed at 30 h, never 'resolved'
 5  P3   1    general   incident  new       -            -
 6  P4   1    general   incident  pending   4 h          -
 7  P3   1    general   incident  closed    1 h          2 h      created 22:30 UTC Nov 1 = 23:30 local: before --since
 8  P3   1    general   incident  resolved  30 min       12 h     created 23:30 UTC Nov 1 = 00:30 local Nov 2: counted

With --since 2026-11-02 (tickets 1-6 and 8):
first response (min) 20 30 60 120 180 240 -> median 90, p90 (rank 6) 240, mean 650/6, within 4 of 6
  (#1 20<=60, #3 60<=120, #4 180<=180, #8 30<=180; not #2 120>60, #6 240>180)
resolution (h) 3 6 6 12 30 -> median 6, p90 (rank 5) 30, mean 57/5 = 11.4, within 3 of 5
  (#1 3<=4, #3 6<=8, #8 12<=24; not #2 6>4, #4 30>24)
average resolution of incidents (#1 #2 #3 #8): 27/4 = 6.75 h against 24 h: met
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import run_cli, write_config
from tests.servers.system import free_port

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
M, H = 60, 3600

TICKETS = [
    # number, priority, tier, category, type, status, created, first response (min), resolved (h), paused (h)
    (1, "P1", 3, "security", "incident", "closed", T0, 20, 3, 0),
    (2, "P1", 3, "network", "incident", "resolved", T0, 120, 6, 0),
    (3, "P2", 2, "network", "incident", "closed", T0, 60, 10, 4),
    (4, "P3", 1, "printing", "request", "closed", T0, 180, None, 0),
    (5, "P3", 1, "general", "incident", "new", T0, None, None, 0),
    (6, "P4", 1, "general", "incident", "pending", T0, 240, None, 0),
    (7, "P3", 1, "general", "incident", "closed", datetime(2026, 11, 1, 22, 30, tzinfo=UTC), 60, 2, 0),
    (8, "P3", 1, "general", "incident", "resolved", datetime(2026, 11, 1, 23, 30, tzinfo=UTC), 30, 12, 0),
]


@pytest.fixture
def desk_config(tmp_path, db_url):
    from mailticket import db
    from mailticket.models import Ticket
    cfg = write_config(tmp_path, db_url=db_url, listener_port=free_port())
    db.connect(db_url)
    for number, prio, tier, category, type_, status, created, fr_min, res_h, paused_h in TICKETS:
        resolved = created + timedelta(hours=res_h) if res_h is not None else None
        Ticket.create(id=number, priority=prio, tier=tier, category=category, type=type_, status=status,
                      requester_address=f"user{number}@customer.example", created_at=created, updated_at=created,
                      first_response_at=created + timedelta(minutes=fr_min) if fr_min is not None else None,
                      resolved_at=resolved,
                      closed_at=(resolved or created + timedelta(hours=30)) if status == "closed" else None,
                      resolution_paused_seconds=paused_h * H)
    return cfg


def report(cfg, *args) -> str:
    result = run_cli("report", *args, config=cfg)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_json_figures_match_the_hand_checked_set(desk_config):
    s = json.loads(report(desk_config, "--since", "2026-11-02", "--format", "json"))
    assert (s["tickets"], s["open"]) == (7, 2)
    fr, res = s["overall"]["first_response"], s["overall"]["resolution"]
    assert (fr["measured"], fr["median"], fr["p90"], fr["within_target"]) == (6, 90 * M, 240 * M, 4)
    assert fr["average"] == pytest.approx(650 / 6 * M)
    assert fr["share_within_target"] == pytest.approx(4 / 6)
    assert (res["measured"], res["median"], res["p90"], res["within_target"]) == (5, 6 * H, 30 * H, 3)
    assert res["average"] == pytest.approx(11.4 * H)
    assert s["average_resolution"] == {"incidents": 4, "average": 6.75 * H, "target": 24 * H, "met": True}
    p1 = s["by_priority"]["P1"]
    assert (p1["tickets"], p1["first_response"]["median"], p1["first_response"]["within_target"]) == (2, 70 * M, 1)
    assert (p1["resolution"]["median"], p1["resolution"]["p90"], p1["resolution"]["target"]) == (4.5 * H, 6 * H, 4 * H)
    p3 = s["by_priority"]["P3"]
    assert (p3["tickets"], p3["first_response"]["measured"], p3["first_response"]["median"]) == (3, 2, 105 * M)
    assert (p3["resolution"]["median"], p3["resolution"]["within_target"]) == (21 * H, 1)
    assert s["by_priority"]["P4"]["resolution"]["measured"] == 0
    assert s["by_priority"]["P4"]["first_response"]["within_target"] == 0
    tier1 = s["by_tier"]["1"]["first_response"]
    assert (tier1["median"], tier1["p90"], tier1["average"], tier1["within_target"]) == (180 * M, 240 * M, 150 * M, 2)
    assert {k: v["tickets"] for k, v in s["by_category"].items()} == {
        "general": 3, "network": 2, "printing": 1, "security": 1}
    assert s["by_category"]["network"]["resolution"]["median"] == 6 * H   # #2 6 h, #3 10 h less 4 h pending


def test_since_is_a_local_date_and_all_tickets_without_it(desk_config):
    everything = json.loads(report(desk_config, "--format", "json"))
    assert (everything["tickets"], everything["overall"]["resolution"]["measured"]) == (8, 6)
    assert everything["average_resolution"]["average"] == pytest.approx(29 / 5 * H)   # #7's 2 h joins
    assert json.loads(report(desk_config, "--since", "2026-11-03", "--format", "json"))["tickets"] == 0


def test_csv_rows_carry_the_same_figures(desk_config):
    rows = list(csv.DictReader(io.StringIO(report(desk_config, "--since", "2026-11-02", "--format", "csv"))))
    by = {(r["group_by"], r["group"]): r for r in rows}
    assert rows[0]["group_by"] == "all"
    assert len(rows) == 1 + 4 + 3 + 4   # all, priorities, tiers, categories
    assert {k: by["all", "all"][k] for k in ("tickets", "first_response_measured", "first_response_median_s",
                                             "first_response_p90_s", "first_response_within_target",
                                             "resolution_median_s", "resolution_p90_s", "resolution_within_target")} \
        == {"tickets": "7", "first_response_measured": "6", "first_response_median_s": "5400.0",
            "first_response_p90_s": "14400.0", "first_response_within_target": "4",
            "resolution_median_s": "21600.0", "resolution_p90_s": "108000.0", "resolution_within_target": "3"}
    assert float(by["all", "all"]["resolution_share_within_target"]) == pytest.approx(0.6)
    assert by["priority", "P4"]["resolution_median_s"] == ""          # nothing measured: an empty cell
    assert by["tier", "2"]["resolution_median_s"] == str(6.0 * H)


def test_text_report_shows_the_same_figures(desk_config):
    lines = [" ".join(line.split()) for line in report(desk_config, "--since", "2026-11-02").splitlines()]
    assert lines[:2] == ["Tickets: 7 (2 open)", "Average resolution of incidents: 6h 45m over 4 against 1d: met"]
    # response: median 1h 30m, p90 4h, mean 650/6 min = 1h 48m, 4/6; resolution: 6h, 30 h, 11.4 h = 11h 24m, 3/5
    assert "all 7 1h 30m 4h 1h 48m 4/6 67% 6h 1d 6h 11h 24m 3/5 60%" in lines
    assert "P1 2 1h 10m 2h 1h 10m 1/2 50% 4h 30m 6h 4h 30m 1/2 50%" in lines
    assert "P4 1 4h 4h 4h 0/1 0% - - - -" in lines                       # nothing resolved: dashes
    assert "1 4 3h 4h 2h 30m 2/3 67% 21h 1d 6h 21h 1/2 50%" in lines       # tier 1: #4 #5 #6 #8
    assert "general 3 2h 15m 4h 2h 15m 1/2 50% 12h 12h 12h 1/1 100%" in lines   # #5 #6 #8
    for heading in ("By priority:", "By tier:", "By category:"):
        assert heading in lines


def test_bad_since_is_a_usage_error(desk_config):
    result = run_cli("report", "--since", "2. november", config=desk_config)
    assert result.returncode == 2
    assert "--since '2. november' is not a date like" in result.stderr
