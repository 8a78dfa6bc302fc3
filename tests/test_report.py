import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailticket.desk.report import (
    CSV_COLUMNS, Record, format_csv, format_json, format_text, median, percentile, summarize,
)
from mailticket.desk.sla import load_policy

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
M, H = 60, 3600


def rec(number, priority, tier, category, fr_min, res_h, status="resolved", type="incident"):
    return Record(number, priority, tier, category, T0,
                  None if fr_min is None else T0 + timedelta(minutes=fr_min),
                  None if res_h is None else T0 + timedelta(hours=res_h), status, type)


# Hand-checked data set (24/7 default policy: P1 1h/4h, P2 2h/8h, P3 3h/24h, P4 3h/72h)
RECORDS = [
    rec(1, "P1", 3, "security", 30, 3),
    rec(2, "P1", 3, "network", 90, 5),
    rec(3, "P2", 2, "network", 60, 6),
    rec(4, "P3", 1, "general", 120, 20),
    rec(5, "P3", 1, "printing", 240, 30),
    rec(6, "P3", 2, "general", 60, None, status="open"),
    rec(7, "P4", 1, "printing", 180, 48, type="request"),
    rec(8, "P3", 1, "general", None, None, status="new"),
]


@pytest.fixture
def summary():
    return summarize(RECORDS, load_policy({}, "UTC", "t.toml"))


def test_counts(summary):
    assert (summary["tickets"], summary["open"]) == (8, 2)


def test_overall_first_response(summary):
    # minutes sorted: 30 60 60 90 120 180 240 -> median 90, p90 rank ceil(6.3)=7 -> 240,
    # mean 780/7; within target: #1 #3 #4 #6 #7 (180 <= 180) = 5 of 7
    fr = summary["overall"]["first_response"]
    assert fr["measured"] == 7
    assert (fr["median"], fr["p90"]) == (90 * M, 240 * M)
    assert fr["average"] == pytest.approx(780 / 7 * M)
    assert (fr["within_target"], fr["share_within_target"]) == (5, pytest.approx(5 / 7))


def test_overall_resolution(summary):
    # hours sorted: 3 5 6 20 30 48 -> median (6+20)/2 = 13, p90 rank ceil(5.4)=6 -> 48,
    # mean 112/6; within: #1 #3 #4 #7 = 4 of 6
    res = summary["overall"]["resolution"]
    assert res["measured"] == 6
    assert (res["median"], res["p90"]) == (13 * H, 48 * H)
    assert res["average"] == pytest.approx(112 / 6 * H)
    assert (res["within_target"], res["share_within_target"]) == (4, pytest.approx(4 / 6))


def test_average_resolution_of_incidents_against_24h(summary):
    # incidents only (#7 is a request): 3 5 6 20 30 -> 64/5 = 12.8 h
    avg = summary["average_resolution"]
    assert avg == {"incidents": 5, "average": pytest.approx(12.8 * H), "target": 24 * H,
                   "met": True}


def test_by_priority(summary):
    p1, p3 = summary["by_priority"]["P1"], summary["by_priority"]["P3"]
    assert list(summary["by_priority"]) == ["P1", "P2", "P3", "P4"]
    assert p1["tickets"] == 2 and p3["tickets"] == 4
    assert (p1["first_response"]["median"], p1["first_response"]["p90"],
            p1["first_response"]["average"], p1["first_response"]["within_target"]) == (
        60 * M, 90 * M, 60 * M, 1)
    assert (p1["resolution"]["median"], p1["resolution"]["p90"],
            p1["resolution"]["within_target"], p1["resolution"]["target"]) == (4 * H, 5 * H, 1, 4 * H)
    # P3 first response 60 120 240: median 120, p90 rank 3 -> 240, mean 140, within 2/3
    assert (p3["first_response"]["median"], p3["first_response"]["p90"],
            p3["first_response"]["average"], p3["first_response"]["within_target"],
            p3["first_response"]["measured"], p3["first_response"]["target"]) == (
        120 * M, 240 * M, 140 * M, 2, 3, 3 * H)
    # P3 resolution 20 30: median 25, p90 rank 2 -> 30, within 1 of 2
    assert (p3["resolution"]["median"], p3["resolution"]["p90"],
            p3["resolution"]["within_target"]) == (25 * H, 30 * H, 1)


def test_by_tier_and_category_judge_each_ticket_by_its_priority(summary):
    t1 = summary["by_tier"]["1"]
    # tier 1: #4 P3 120m yes, #5 P3 240m no, #7 P4 180m yes, #8 unanswered
    assert (t1["tickets"], t1["first_response"]["measured"], t1["first_response"]["within_target"],
            t1["first_response"]["median"], t1["first_response"]["p90"]) == (
        4, 3, 2, 180 * M, 240 * M)
    general = summary["by_category"]["general"]
    assert (general["tickets"], general["first_response"]["median"],
            general["first_response"]["p90"], general["first_response"]["within_target"]) == (
        3, 90 * M, 120 * M, 2)
    assert general["resolution"]["measured"] == 1
    assert set(summary["by_category"]) == {"general", "network", "printing", "security"}


def test_group_by_is_chosen_by_the_caller():
    s = summarize(RECORDS, load_policy({}, "UTC", "t.toml"), group_by=("category",))
    assert "by_category" in s and "by_priority" not in s and "by_tier" not in s


def test_business_hours_and_pending_time_are_not_counted():
    tz = ZoneInfo("Europe/Stockholm")
    policy = load_policy({"business_hours": {}}, "Europe/Stockholm", "t.toml")
    created = datetime(2026, 11, 27, 16, tzinfo=tz)                   # Friday 16:00
    r = Record(1, "P3", 1, "general", created, datetime(2026, 11, 30, 9, tzinfo=tz),  # Mon 09:00
               datetime(2026, 11, 30, 15, tzinfo=tz), "resolved", paused=timedelta(hours=2))
    s = summarize([r], policy)
    assert s["overall"]["first_response"]["median"] == 2 * H
    assert s["overall"]["resolution"]["median"] == (8 - 2) * H


def test_empty_report():
    s = summarize([], load_policy({}, "UTC", "t.toml"))
    assert s["overall"]["first_response"]["median"] is None
    assert s["average_resolution"]["met"] is None
    assert "no resolved incidents" in format_text(s)


def test_dict_records_are_accepted():
    as_dicts = [r.__dict__ for r in RECORDS]
    policy = load_policy({}, "UTC", "t.toml")
    assert summarize(as_dicts, policy) == summarize(RECORDS, policy)


def test_median_and_percentile():
    assert median([5, 1, 3]) == 3 and median([4, 1, 3, 2]) == 2.5 and median([]) is None
    assert percentile(list(range(1, 11)), 90) == 9 and percentile([7], 90) == 7
    assert percentile(list(range(1, 21)), 90) == 18 and percentile([], 90) is None


def test_format_text(summary):
    text = format_text(summary)
    assert "Tickets: 8 (2 open)" in text
    assert "Average resolution of incidents: 12h 48m over 5 against 1d: met" in text
    all_row = next(line for line in text.splitlines() if line.startswith("all"))
    assert all_row.split()[:4] == ["all", "8", "1h", "30m"]
    assert "5/7" in all_row and "4/6" in all_row
    assert "By priority:" in text and "By category:" in text


def test_format_json_round_trips(summary):
    assert json.loads(format_json(summary))["by_priority"]["P1"]["resolution"]["p90"] == 5 * H


def test_format_csv(summary):
    rows = list(csv.DictReader(io.StringIO(format_csv(summary))))
    assert list(rows[0]) == CSV_COLUMNS
    assert rows[0]["group"] == "all" and rows[0]["first_response_median_s"] == str(90.0 * M)
    p3 = next(r for r in rows if r["group_by"] == "priority" and r["group"] == "P3")
    assert (p3["tickets"], p3["resolution_within_target"], p3["resolution_p90_s"]) == (
        "4", "1", str(30.0 * H))
    assert len(rows) == 1 + 4 + 3 + 4
