"""Public holidays computed, not typed: ``[sla] holidays_country`` stops the business-hours clocks on
the country's public and de-facto holidays of any year, the typed list still adds company days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailticket.config import build_config
from mailticket.desk.sla import Clock, add_working_time, load_policy, working_time_between
from mailticket.errors import ConfigError

F = "mailticket.toml"
STHLM = ZoneInfo("Europe/Stockholm")
H = timedelta(hours=1)
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "17:00"}


def local(*args):
    return datetime(*args, tzinfo=STHLM)


def calendar(**sla):
    return load_policy({"business_hours": dict(WEEKDAYS), **sla}, "Europe/Stockholm", F).business


SWEDEN = {"holidays_country": "SE"}


# 2031: no typed list anywhere reaches it. Easter: Good Friday 11 April, Easter Monday 14 April;
# Ascension Thursday 22 May; Midsummer Eve Friday 20 June; Christmas Eve Wednesday; New Year's Eve Wednesday.
@pytest.mark.parametrize("opened, due, what", [
    (local(2031, 4, 10, 16), local(2031, 4, 15, 9), "Good Friday and Easter Monday"),
    (local(2031, 5, 21, 16), local(2031, 5, 23, 9), "Ascension Day"),
    (local(2031, 6, 19, 16), local(2031, 6, 23, 9), "Midsummer Eve (a de-facto holiday)"),
    (local(2031, 12, 23, 16), local(2031, 12, 29, 9), "Christmas Eve, Christmas Day, Boxing Day"),
    (local(2031, 12, 30, 16), local(2032, 1, 2, 9), "New Year's Eve and New Year's Day"),
])
def test_the_clock_stands_still_on_swedish_holidays_of_a_year_beyond_any_list(opened, due, what):
    assert add_working_time(opened, 2 * H, calendar(**SWEDEN)) == due, what
    assert add_working_time(opened, 2 * H, calendar()) == opened + timedelta(hours=17), "without the country"


def test_a_clock_started_before_easter_has_used_nothing_over_the_long_weekend():
    cal = calendar(**SWEDEN)
    clock = Clock(started_at=local(2031, 4, 10, 16), target=4 * H)
    assert clock.used(local(2031, 4, 15, 8), cal) == H   # Thursday 16-17 only
    assert clock.used(local(2031, 4, 15, 10), cal) == 3 * H
    assert working_time_between(local(2031, 4, 10, 17), local(2031, 4, 15, 8), cal) == timedelta(0)


def test_the_years_are_computed_as_far_as_the_clock_goes():
    cal = calendar(**SWEDEN)
    for year, eve in ((2040, date(2040, 6, 22)), (2055, date(2055, 6, 25))):
        assert cal.window(eve) is None, f"Midsummer Eve {year}"
        assert cal.window(eve - timedelta(days=1)) is not None


def test_the_typed_list_still_adds_the_company_days():
    cal = calendar(**SWEDEN, business_hours={**WEEKDAYS, "holidays": ["2031-06-19"]})
    assert cal.window(date(2031, 6, 19)) is None   # the company's day before Midsummer Eve
    assert cal.window(date(2031, 6, 20)) is None   # Midsummer Eve from the country
    assert cal.window(date(2031, 6, 18)) is not None


def test_a_subdivision_adds_its_own_days():
    epiphany = date(2031, 1, 6)  # a Monday: a holiday in Bavaria, not in Berlin
    assert calendar(holidays_country="DE", holidays_subdivision="BY").window(epiphany) is None
    assert calendar(holidays_country="DE", holidays_subdivision="BE").window(epiphany) is not None
    assert calendar(holidays_country="de", holidays_subdivision="by").window(epiphany) is None


def test_holidays_do_not_stop_a_24_7_clock():
    policy = load_policy(SWEDEN, "Europe/Stockholm", F)
    assert not policy.business.business
    assert add_working_time(local(2031, 6, 19, 16), 2 * H, policy.business) == local(2031, 6, 19, 18)


@pytest.mark.parametrize("sla, key, words", [
    ({"holidays_country": "XX"}, "sla.holidays_country", "'XX' is not a country"),
    ({"holidays_country": 46}, "sla.holidays_country", "46 is not a country"),
    ({"holidays_country": "DE", "holidays_subdivision": "XY"}, "sla.holidays_subdivision", "BY"),
    ({"holidays_country": "SE", "holidays_subdivision": "AB"}, "sla.holidays_subdivision",
     "SE has no subdivisions"),
    ({"holidays_subdivision": "BY"}, "sla.holidays_subdivision", "needs holidays_country"),
])
def test_a_wrong_country_or_subdivision_names_the_key(sla, key, words):
    with pytest.raises(ConfigError) as caught:
        build_config({"sla": sla}, F, Path("."))
    assert caught.value.key == key and words in str(caught.value) and F in str(caught.value)
