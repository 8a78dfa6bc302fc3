"""The parts of "every requester in their own language" (issue 26) below the conversations: the
rule that tells a mail's language, `[service] languages` and check-config, #language, the report
split by language, `show`, and the migration (tests/test_conversations_language.py has the mail)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from mailticket import db
from mailticket.config import load_config
from mailticket.desk import pipeline
from mailticket.desk.commands import CommandError, parse_commands
from mailticket.inbound.language import first_mail, header_language, switched, words
from mailticket.models import RequesterLanguage, Ticket
from mailticket.service.wiring import build_desk
from tests.harness import make_mail, run_cli, write_config
from tests.servers.system import free_port

OFFERED = ("sv", "en")
ENGLISH = ("Hello, the printer on the third floor has stopped printing since this morning. It shows a paper "
           "jam error although there is no paper stuck inside. Could someone please have a look at it today?")
SWEDISH = ("Hej! Skrivaren på tredje våningen har slutat skriva ut sedan i morse. Den visar ett fel om "
           "pappersstopp fast det inte sitter något papper fast. Kan någon titta på den i dag?")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- the rule

@pytest.mark.parametrize("value, expected", [
    ("sv", "sv"), ("sv-SE", "sv"), ("SV_se", "sv"), ("de-DE, en-GB", "en"), (" en ", "en"),
    ("de-DE", None), ("", None), (None, None), ("x" * 500, None), ("🙂, sv", "sv"), (",,,", None)])
def test_content_language_names_an_offered_language_or_none(value, expected):
    assert header_language(value, OFFERED) == expected


def test_words_count_letters_not_numbers_addresses_or_links():
    assert words("Help!") == 1
    assert words("anna@customer.example https://example.com/x 12345 +46 8 123 45 67") == 0
    assert words("Skrivaren på plan 3 är trasig") == 5


@pytest.mark.parametrize("desk", OFFERED)
@pytest.mark.parametrize("text", ["Help!", "Hjälp!", "Tack så mycket", "Printer broken, help", "", "-- \nAnna"])
def test_under_five_words_always_gives_the_desks_language(desk, text):
    guess = first_mail(text, OFFERED, desk)
    assert (guess.language, guess.how) == (desk, "short")


@pytest.mark.parametrize("desk", OFFERED)
def test_a_long_text_gives_its_language_and_the_header_wins_over_it(desk):
    assert first_mail(ENGLISH, OFFERED, desk).language == "en"
    assert first_mail(SWEDISH, OFFERED, desk).language == "sv"
    assert first_mail(ENGLISH, OFFERED, desk, "sv-SE").language == "sv"
    assert first_mail("Help!", OFFERED, desk, "en").language == "en"  # a stated language needs no words
    assert first_mail(ENGLISH, OFFERED, desk, "de").language == "en"  # one the desk does not offer: ignored


@pytest.mark.parametrize("text", ["abc \udcff def ghi jkl mno pqr stu", "中文 测试 文本 更多 的 文字 内容",
                                  "\x00\x01 hello there how are you", "ord " * 200_000, "ä" * 50_000])
def test_odd_text_never_raises_and_gives_an_offered_language(text):
    assert first_mail(text, OFFERED, "sv").language in OFFERED
    assert switched(text, OFFERED, "sv") is None or switched(text, OFFERED, "sv").language == "en"


def test_a_failing_detector_keeps_the_desks_language(monkeypatch):
    from mailticket.inbound import language

    def broken(offered):
        raise RuntimeError("model missing")
    monkeypatch.setattr(language, "_detector", broken)
    assert first_mail(ENGLISH, OFFERED, "sv").language == "sv"
    assert switched(ENGLISH, OFFERED, "sv") is None


def test_a_desk_that_offers_one_language_writes_only_in_it():
    assert first_mail(ENGLISH, ("sv",), "sv").language == "sv"
    assert switched(ENGLISH, ("sv",), "sv") is None


def test_a_later_mail_switches_only_with_twenty_words_in_another_language():
    assert switched("Thanks, it works now, you are all great!", OFFERED, "sv") is None  # under 20 words
    assert switched(SWEDISH, OFFERED, "sv") is None  # the same language
    change = switched(ENGLISH, OFFERED, "sv")
    assert change is not None and change.language == "en" and change.words >= 20


# ---------------------------------------------------------------- config

def test_languages_default_to_every_shipped_one_with_the_desks_first(tmp_path):
    sv = load_config(write_config(tmp_path, extra={"service": {"locale": "sv"}}))
    assert sv.service.languages == ("sv", "en")
    en = load_config(write_config(tmp_path, extra={"service": {"locale": "en", "languages": ["sv", "en"]}}))
    assert en.service.languages == ("en", "sv")
    only = load_config(write_config(tmp_path, extra={"service": {"locale": "sv", "languages": ["sv"]}}))
    assert only.service.languages == ("sv",)


@pytest.mark.parametrize("languages, words", [
    (["sv", "de"], ["service.languages", "'de' cannot be offered", "templates/de",
                    "locale/de/LC_MESSAGES/mailticket.po"]),
    (["sv"], ["service.languages", "must include the desk's own locale 'en'"]),
    (["sv", 7], ["service.languages", "7 is not a language code"]),
    ("sv", ["service.languages"])])
def test_check_config_refuses_a_language_the_desk_cannot_write(tmp_path, languages, words):
    path = write_config(tmp_path, listener_port=free_port(), extra={"service": {"languages": languages}})
    result = run_cli("check-config", config=path)
    assert result.returncode == 3, result.stdout + result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert str(path) in result.stderr


def test_check_config_accepts_the_shipped_languages(tmp_path):
    path = write_config(tmp_path, listener_port=free_port(), extra={"service": {"languages": ["en", "sv"]}})
    result = run_cli("check-config", config=path)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- #language

@pytest.mark.parametrize("line, value", [("#language en", "en"), ("#LANGUAGE SV", "sv"), ("#språk svenska", "sv"),
                                         ("#language English", "en"), ("#language en-GB", "en")])
def test_language_command_parses(line, value):
    parsed = parse_commands(line + "\n\nText.", now=NOW, timezone="UTC", agents=set(), languages=OFFERED)
    assert not parsed.errors and [(c.name, c.args) for c in parsed.commands] == [("language", {"value": value})]
    assert parsed.body.strip() == "Text."


@pytest.mark.parametrize("line, problem", [("#language xx", "'xx' is not a language this desk writes in (sv, en)"),
                                           ("#language", "needs a language"),
                                           ("#language sv en", "takes one language"),
                                           ("#language de", "'de' is not a language")])
def test_language_command_with_a_bad_value_is_a_clear_error(line, problem):
    parsed = parse_commands(line, now=NOW, timezone="UTC", agents=set(), languages=OFFERED)
    assert not parsed.commands and len(parsed.errors) == 1
    error = parsed.errors[0]
    assert isinstance(error, CommandError) and error.line == line
    assert problem in str(error.problem.translated("en") if hasattr(error.problem, "translated") else error.problem)
    assert str(error.valid) == "#language sv|en"


def test_a_desk_that_offers_only_swedish_refuses_language_en():
    parsed = parse_commands("#language en", now=NOW, timezone="UTC", agents=set(), languages=("sv",))
    assert parsed.errors and str(parsed.errors[0].valid) == "#language sv"


# ---------------------------------------------------------------- show, report, migration

def _desk(tmp_path, db_url=None, locale="sv"):
    path = write_config(tmp_path, db_url=db_url, listener_port=free_port(), extra={"service": {"locale": locale}})
    cfg = load_config(path)
    db.connect(cfg.database.url)
    return path, build_desk(cfg)


def _ingest(desk, raw):
    return pipeline.process_one(desk, pipeline.store_raw(raw, source="imap:INBOX", now=datetime.now(timezone.utc)))


def test_show_and_the_report_name_the_language(tmp_path, db_url):
    path, desk = _desk(tmp_path, db_url)
    _ingest(desk, make_mail(sender="anna@customer.example", subject="Printer", body=ENGLISH))
    _ingest(desk, make_mail(sender="bo@customer.example", subject="Skrivare", body=SWEDISH))
    _ingest(desk, make_mail(sender="cy@customer.example", subject="Help", body="Help!"))
    now = datetime.now(timezone.utc)
    old = Ticket.create(requester_address="dan@customer.example", subject="Before languages", created_at=now,
                        updated_at=now)  # a ticket from before the migration: no language
    assert [t.language for t in Ticket.select().order_by(Ticket.id)] == ["en", "sv", "sv", None]
    shown = run_cli("show", "1", config=path).stdout
    assert "Writes in:           en (English; told from the text)" in shown
    assert "Writes in:           sv (Swedish; too short to tell)" in run_cli("show", "3", config=path).stdout
    assert "the desk's language" in run_cli("show", str(old.id), config=path).stdout
    report = json.loads(run_cli("report", "--by", "language", "--format", "json", config=path).stdout)
    # the older ticket was written to in the desk's language: counted there
    assert {k: v["tickets"] for k, v in report["by"]["language"].items()} == {"en": 1, "sv": 3}
    text = run_cli("report", "--by", "language,priority", config=path).stdout
    assert "Per språk:" in text and "engelska" in text and "svenska" in text
    rows = run_cli("report", "--format", "csv", config=path).stdout
    assert "language,en," in rows and "language,sv," in rows
    assert run_cli("report", "--by", "lang", config=path).returncode == 2


def test_the_migration_adds_the_language_to_an_older_database(tmp_path, db_url):
    _desk(tmp_path, db_url)
    database = Ticket._meta.database
    database.execute_sql('DROP TABLE "requester_language"')
    database.execute_sql('ALTER TABLE "ticket" DROP COLUMN "language"')
    database.execute_sql("DELETE FROM schema_migration WHERE name = '0180_requester_languages'")
    assert db.apply_migrations(database) == ["0180_requester_languages"]
    assert "language" in {c.name for c in database.get_columns("ticket")}
    RequesterLanguage.create(address="a@b.example", language="sv", how="text", updated_at=NOW)
