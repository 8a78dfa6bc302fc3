from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mailticket.desk.commands import CommandError, parse_commands, strict_address

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
STHLM = ZoneInfo("Europe/Stockholm")
AGENTS = {"Alice@Example.com", "bob@example.com"}
CATEGORIES = {"Printer", "Network", "E-mail"}


def parse(text, *, now=NOW, tz="Europe/Stockholm", categories=None):
    return parse_commands(text, now=now, timezone=tz, agents=AGENTS, categories=categories)


def only_command(text, **kw):
    parsed = parse(text, **kw)
    assert parsed.errors == [], parsed.errors
    assert len(parsed.commands) == 1
    return parsed.commands[0]


def only_error(text, **kw) -> CommandError:
    parsed = parse(text, **kw)
    assert parsed.commands == []
    assert len(parsed.errors) == 1, parsed.errors
    return parsed.errors[0]


# --- the block and the body -------------------------------------------------------------


def test_commands_at_the_top_are_taken_out_of_the_body():
    parsed = parse("#status resolved\n#priority P2\n\nHi Bob,\nfixed it.\n")
    assert [(c.name, c.args) for c in parsed.commands] == [
        ("status", {"value": "resolved"}), ("priority", {"value": "P2"})]
    assert parsed.body == "Hi Bob,\nfixed it.\n"
    assert parsed.errors == []


def test_leading_blank_lines_and_blank_lines_between_commands_are_allowed():
    parsed = parse("\n  \n#status pending\n\n#type request\nWaiting for you.")
    assert [c.name for c in parsed.commands] == ["status", "type"]
    assert [c.line_no for c in parsed.commands] == [3, 5]
    assert parsed.body == "Waiting for you."


def test_without_commands_the_body_is_the_text_unchanged():
    for text in ["", "\n\nHello\r\n", "# Heading\ntext", "#1 thing to check\n", "I like #status lines\n"]:
        parsed = parse(text)
        assert (parsed.commands, parsed.errors, parsed.body) == ([], [], text)


def test_unicode_blank_lines_count_as_blank():
    parsed = parse("\u3000\n#status open\n\u200b\u00a0\n#type request\n\u2003\nHello")
    assert [c.name for c in parsed.commands] == ["status", "type"]
    assert parsed.body == "Hello"


def test_a_naive_now_is_taken_as_utc():
    args = only_command("#call 2026-11-27 10:30", now=NOW.replace(tzinfo=None)).args
    assert args["start"] == datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)


def test_crlf_line_ends_are_kept():
    parsed = parse("#status open\r\n\r\nHello\r\nBye\r\n")
    assert parsed.body == "Hello\r\nBye\r\n"


def test_command_names_and_values_ignore_case_and_invisible_leading_space():
    parsed = parse("\u00a0#Status Resolved\n\ufeff#PRIORITY p1\n  #Impact HIGH\ntext")
    assert [c.args["value"] for c in parsed.commands] == ["resolved", "P1", "high"]
    assert parsed.commands[0].line == "#Status Resolved"


def test_a_colon_after_the_command_word_is_accepted():
    assert only_command("#status: closed\n").args == {"value": "closed"}


def test_command_in_the_middle_is_not_executed_and_stays_in_the_body():
    text = "Hi,\nI restarted it.\n#status resolved\nBye"
    parsed = parse(text)
    assert parsed.commands == []
    assert parsed.body == text
    [error] = parsed.errors
    assert (error.line, error.line_no) == ("#status resolved", 3)
    assert "top of the reply" in error.problem
    assert "first lines" in error.valid


def test_valid_commands_still_apply_when_a_later_one_is_misplaced():
    parsed = parse("#status pending\nHi,\n\n#priority P1\n")
    assert [c.name for c in parsed.commands] == ["status"]
    assert [e.line_no for e in parsed.errors] == [4]
    assert parsed.body == "Hi,\n\n#priority P1\n"


def test_unknown_words_quotes_and_hashtags_below_the_top_are_plain_text():
    text = "Hi,\n#include <stdio.h>\n> #status closed\nsee #status in the docs\n#hashtag\n"
    parsed = parse(text)
    assert (parsed.commands, parsed.errors, parsed.body) == ([], [], text)


def test_unknown_command_at_the_top_is_an_error_and_the_rest_applies():
    parsed = parse("#statsu resolved\n#status resolved\nDone.")
    assert [c.name for c in parsed.commands] == ["status"]
    [error] = parsed.errors
    assert error.line == "#statsu resolved" and error.line_no == 1
    assert "#statsu is not a command" in error.problem
    assert "#status" in error.valid and "#call" in error.valid
    assert parsed.body == "Done."


def test_a_command_given_twice_applies_once():
    parsed = parse("#status pending\n#status closed\n")
    assert [c.args for c in parsed.commands] == [{"value": "pending"}]
    assert "twice" in parsed.errors[0].problem and parsed.errors[0].line_no == 2


def test_error_renders_line_problem_and_valid():
    error = only_error("#priority P5")
    assert str(error) == 'Line 1 "#priority P5": \'P5\' is not a priority. Valid: #priority P1|P2|P3|P4'


def test_swedish_aliases():
    parsed = parse("#prioritet 2\n#tilldela mig\n#status löst\n#nivå 2\n")
    assert [(c.name, c.args) for c in parsed.commands] == [
        ("priority", {"value": "P2"}), ("assign", {"me": True, "address": None}),
        ("status", {"value": "resolved"}), ("tier", {"value": 2})]


# --- each command ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["open", "pending", "resolved", "closed"])
def test_status(value):
    assert only_command(f"#status {value}").args == {"value": value}


@pytest.mark.parametrize("line", ["#status", "#status done", "#status open now"])
def test_bad_status(line):
    error = only_error(line)
    assert error.valid == "#status open|pending|resolved|closed"


@pytest.mark.parametrize("value,expected", [("P1", "P1"), ("p4", "P4"), ("3", "P3")])
def test_priority(value, expected):
    assert only_command(f"#priority {value}").args == {"value": expected}


@pytest.mark.parametrize("value", ["P0", "P5", "high", "", "P1 P2"])
def test_bad_priority(value):
    assert "priority" in only_error(f"#priority {value}").problem


@pytest.mark.parametrize("name", ["impact", "urgency"])
def test_impact_and_urgency(name):
    assert only_command(f"#{name} Medium").args == {"value": "medium"}
    assert only_error(f"#{name} extreme").valid == f"#{name} high|medium|low"


def test_assign_me_and_agents():
    assert only_command("#assign me").args == {"me": True, "address": None}
    assert only_command("#assign alice@example.com").args == {"me": False, "address": "alice@example.com"}
    assert only_command("#assign Bob <BOB@example.com>").args["address"] == "bob@example.com"


def test_assign_to_a_non_agent_is_refused():
    error = only_error("#assign mallory@example.com")
    assert error.problem == "mallory@example.com is not an agent"
    assert "#assign me" in error.valid


@pytest.mark.parametrize("value", ["bob", "bob@", "bob@@example.com", "alice@example.com, bob@example.com",
                                   "bob@example.com <alice@example.com", '"unterminated <bob@example.com>'])
def test_assign_to_a_malformed_address_is_refused(value):
    """Addresses with parse defects never map to an agent, even when an agent's address is in them."""
    assert only_error(f"#assign {value}").problem == f"{value!r} is not an email address"


def test_assign_without_a_value_is_refused():
    assert only_error("#assign").problem == "needs me, none or an agent's address"


@pytest.mark.parametrize("value", ["bob", "bob@", "bob@@example.com", "a@example.com, b@example.com",
                                   "<bob@example.com", "bob@localhost", "", "Bob <bob@exa mple.com>",
                                   "bob@[192.0.2.1]", "Smith, Bob <bob@example.com>", "bob@example.com>"])
def test_strict_address_refuses_defects(value):
    assert strict_address(value) is None


def test_strict_address_accepts_plain_and_named():
    assert strict_address(" Bob@Example.COM ") == "bob@example.com"
    assert strict_address('"Bob, IT" <bob@example.com>') == "bob@example.com"
    assert strict_address("Bob B. Builder <bob@example.com>") == "bob@example.com"  # obsolete period is fine


def test_escalate_with_and_without_reason():
    assert only_command("#escalate").args == {"reason": None}
    assert only_command("#escalate needs a network engineer").args == {"reason": "needs a network engineer"}


@pytest.mark.parametrize("value,expected", [("1", 1), ("3", 3), ("T2", 2)])
def test_tier(value, expected):
    assert only_command(f"#tier {value}").args == {"value": expected}


@pytest.mark.parametrize("value", ["0", "4", "two", ""])
def test_bad_tier(value):
    assert only_error(f"#tier {value}").valid == "#tier 1|2|3"


def test_category_is_validated_when_categories_are_given():
    assert only_command("#category printer", categories=CATEGORIES).args == {"value": "Printer"}
    assert only_command("#category Coffee machine").args == {"value": "Coffee machine"}
    error = only_error("#category Coffee", categories=CATEGORIES)
    assert "'Coffee' is not a category" == error.problem
    assert error.valid == "#category NAME, one of: E-mail, Network, Printer"
    assert only_error("#category", categories=CATEGORIES).problem == "needs a category name"


def test_type():
    assert only_command("#type Incident").args == {"value": "incident"}
    assert only_error("#type problem").valid == "#type incident|request"


def test_note_keeps_the_text_after_it_in_the_body():
    parsed = parse("#note called Bob, he will reboot\n#status pending\nMore detail.\n")
    assert [c.name for c in parsed.commands] == ["note", "status"]
    assert parsed.body == "called Bob, he will reboot\nMore detail.\n"
    assert parse("#note").body == ""


# --- #call ----------------------------------------------------------------------------


def test_call_in_the_service_time_zone_with_default_duration():
    args = only_command("#call 2026-11-28 14:00").args
    assert args["start"] == datetime(2026, 11, 28, 14, 0, tzinfo=STHLM)
    assert args["start"].utcoffset() == timedelta(hours=1)
    assert args["duration"] == timedelta(minutes=30)
    assert args["timezone"] == "Europe/Stockholm"


def test_call_with_duration_and_named_zone_in_any_order():
    args = only_command("#call 2026-11-28 09:30 1h America/New_York").args
    assert args["start"] == datetime(2026, 11, 28, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert args["duration"] == timedelta(hours=1)
    assert args["timezone"] == "America/New_York"
    assert only_command("#call 2026-11-28T09:30 CET 45m").args["timezone"] == "CET"


def test_call_with_an_offset_is_shown_in_the_service_zone():
    args = only_command("#call 2026-11-28 14:00 +00:00 1h30m").args
    assert args["start"] == datetime(2026, 11, 28, 14, 0, tzinfo=timezone.utc)
    assert args["start"].tzinfo == STHLM and args["start"].hour == 15
    assert args["duration"] == timedelta(minutes=90)
    assert only_command("#call 2026-11-28 14.00 UTC").args["start"].hour == 15


def test_call_in_the_past_is_refused():
    error = only_error("#call 2026-11-27 09:59")  # 08:59 UTC, one minute ago
    assert "in the past" in error.problem and "2026-11-27 10:00" in error.problem
    assert error.valid.startswith("#call YYYY-MM-DD HH:MM")
    assert "in the past" in only_error("#call 2026-11-27 10:00").problem  # now exactly


def test_call_one_minute_ahead_is_accepted():
    assert only_command("#call 2026-11-27 10:01").args["start"] == NOW + timedelta(minutes=1)


def test_call_in_a_dst_gap_is_refused():
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    error = only_error("#call 2026-03-29 02:30", now=now)
    assert "does not exist in Europe/Stockholm" in error.problem


def test_call_in_a_dst_overlap_asks_for_an_offset():
    now = datetime(2026, 10, 1, tzinfo=timezone.utc)
    error = only_error("#call 2026-10-25 02:30", now=now)
    assert "happens twice" in error.problem and "+02:00" in error.problem
    args = only_command("#call 2026-10-25 02:30 +01:00", now=now).args
    assert args["start"].utcoffset() == timedelta(hours=1) and args["start"].hour == 2


def test_call_without_any_time_zone_is_refused():
    for tz in (None, "", "Not/AZone"):
        assert "no time zone" in only_error("#call 2026-11-28 14:00", tz=tz).problem
    assert only_command("#call 2026-11-28 14:00 Europe/Oslo", tz=None).args["timezone"] == "Europe/Oslo"
    assert only_command("#call 2026-11-28 14:00 +01:00", tz=None).args["timezone"] == "UTC"


@pytest.mark.parametrize(
    "line,words",
    [("#call", "needs a date and a time"), ("#call 2026-11-28", "needs a date and a time"),
     ("#call tomorrow 14:00", "is not a date"), ("#call 2026-02-30 14:00", "is not a date"),
     ("#call 28/11/2026 14:00", "is not a date"), ("#call 2026-11-28 25:00", "is not a time"),
     ("#call 2026-11-28 2pm", "is not a time"), ("#call 2026-11-28 14:00 Mars/Olympus", "is not a time zone"),
     ("#call 2026-11-28 14:00 soon", "neither a time zone nor a duration"),
     ("#call 2026-11-28 14:00 30", "neither a time zone nor a duration"),
     ("#call 2026-11-28 14:00 30m 1h", "neither"),
     ("#call 2026-11-28 14:00 0m", "not possible"), ("#call 2026-11-28 14:00 13h", "not possible"),
     ("#call 2026-11-28 14:00 +25:00", "not a UTC offset"),
     ("#call 2028-11-28 14:00", "more than a year ahead")],
)
def test_bad_calls(line, words):
    error = only_error(line)
    assert words in error.problem
    assert error.line == line


def test_bad_input_never_raises():
    hostile = "#call 9999-99-99 99:99 ////\n#assign <<<@@>>>\n#category \x00\n#tier \u0663\n#\n#é\n"
    parsed = parse(hostile, categories=CATEGORIES)
    assert parsed.commands == []
    assert len(parsed.errors) == 4
    assert parsed.body == "#\n#é\n"  # "#" alone is text, so the block ends there
