import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailticket.errors import ConfigError
from mailticket.desk.rules import DEFAULT_MATRIX, RuleSet, decide, load_rules, priority_for, security_hit

F = "mailticket.toml"


def ruleset(rules=(), **extra):
    return load_rules({"rules": list(rules), **extra}, F)


def test_defaults_when_no_rule_matches():
    d = decide(ruleset(), "anna@example.com", "Hello", "My screen flickers", set())
    assert (d.type, d.category, d.impact, d.urgency, d.priority, d.tier) == (
        "incident", "general", "medium", "medium", "P3", 1)
    assert d.rule_name is None and d.security is False and d.breach_report is False
    assert "no rule matched" in d.reasons[0]


@pytest.mark.parametrize("impact,urgency,expected", [
    ("high", "high", "P1"), ("high", "medium", "P2"), ("high", "low", "P3"),
    ("medium", "high", "P2"), ("medium", "medium", "P3"), ("medium", "low", "P4"),
    ("low", "high", "P3"), ("low", "medium", "P4"), ("low", "low", "P4"),
])
def test_itil_matrix(impact, urgency, expected):
    assert priority_for(impact, urgency, DEFAULT_MATRIX) == expected
    assert priority_for(impact, urgency) == expected


def test_rule_outcomes_and_reasons():
    rs = ruleset([{"name": "printers", "subject": "(?i)printer", "body": "(?i)toner",
                   "type": "request", "category": "printing", "impact": "low", "urgency": "low"}])
    d = decide(rs, "a@example.com", "Printer on floor 2", "Out of TONER again", set())
    assert (d.type, d.category, d.priority, d.tier, d.rule_name) == (
        "request", "printing", "P4", 1, "printers")
    # in words, with what matched rather than the regular expression
    assert "rule “printers”: the subject contains “Printer”; the text contains “TONER”" in d.reasons
    assert "priority P4 from the matrix (impact low, urgency low)" in d.reasons


def test_all_conditions_must_match():
    rs = ruleset([{"name": "printers", "subject": "(?i)printer", "body": "(?i)toner",
                   "category": "printing"}])
    d = decide(rs, "a@example.com", "Printer on floor 2", "paper jam", set())
    assert d.rule_name is None and d.category == "general"


def test_first_matching_rule_wins():
    rs = ruleset([{"name": "first", "subject": "VPN", "category": "network"},
                  {"name": "second", "subject": "VPN", "category": "access"}])
    assert decide(rs, "a@x.se", "VPN down", "", set()).rule_name == "first"


def test_from_address_and_domain():
    rs = ruleset([{"name": "board", "from": ["ceo@example.com", "@board.example.com"],
                   "impact": "high", "urgency": "high"}])
    assert decide(rs, "CEO@Example.com", "x", "", set()).rule_name == "board"
    assert decide(rs, "jo@board.example.com", "x", "", set()).rule_name == "board"
    assert decide(rs, "jo@sub.board.example.com", "x", "", set()).rule_name is None
    assert decide(rs, "jo@example.com", "x", "", set()).rule_name is None


def test_vip_condition_and_p1_goes_to_tier_3():
    rs = ruleset([{"name": "vip", "vip": True, "impact": "high", "urgency": "high"}])
    d = decide(rs, "boss@example.com", "x", "", {"Boss@example.com"})
    assert (d.priority, d.tier, d.rule_name) == ("P1", 3, "vip")
    assert decide(rs, "other@example.com", "x", "", {"boss@example.com"}).rule_name is None


def test_vip_false_matches_non_vip():
    rs = ruleset([{"name": "normal", "vip": False, "urgency": "low"}])
    assert decide(rs, "x@example.com", "s", "", {"boss@example.com"}).rule_name == "normal"
    assert decide(rs, "boss@example.com", "s", "", {"boss@example.com"}).rule_name is None


def test_rule_priority_and_tier_override_matrix():
    rs = ruleset([{"name": "n", "subject": "x", "priority": "P2", "tier": 2, "impact": "low"}])
    d = decide(rs, "a@b.c", "x", "", set())
    assert (d.priority, d.tier) == ("P2", 2)
    assert "priority P2 set by the rule" in d.reasons


def test_custom_matrix_cells_merge_over_default():
    rs = ruleset(priority_matrix={"medium": {"medium": "P2"}})
    assert decide(rs, "a@b.c", "s", "b", set()).priority == "P2"
    assert rs.matrix["low"]["low"] == "P4"


@pytest.mark.parametrize("subject,body,breach", [
    ("Phishing mail received", "", False),
    ("Hello", "We think there was a data breach last night", True),
    ("Ransomware on file server", "", False),
    ("Leaked credentials on pastebin", "", True),
    ("Möjligt dataintrång", "", True),
    ("Anmälan", "Vi har en personuppgiftsincident att rapportera", True),
    ("Nätfiske", "", False),
    ("", "Intrånget upptäcktes i morse", False),
    ("kapat konto", "", False),
    ("läckta uppgifter", "", True),
    ("Utpressningsvirus på min dator", "", False),
    ("MALWARE alert", "", False),
    ("Is my account compromised?", "", False),
])
def test_security_words(subject, body, breach):
    d = decide(ruleset([{"name": "all", "category": "printing"}]), "a@b.c", subject, body, set())
    assert d.security and d.category == "security" and d.priority == "P1" and d.tier == 3
    assert d.breach_report is breach
    assert d.rule_name is None


@pytest.mark.parametrize("text", ["antiphishing training invitation", "brintrång", "skadligt"])
def test_security_words_need_a_word_start(text):
    d = decide(ruleset(), "a@b.c", text, "", set())
    assert not d.security and d.category == "general"


def test_security_words_allow_inflection_endings():
    assert decide(ruleset(), "a@b.c", "we were breached", "", set()).breach_report


def _security_hit_word_by_word(rs, subject, body):
    """What security_hit answered before it searched the first words at once: each word in turn."""
    for kw in rs.keywords:
        for where, text in (("subject", subject), ("body", body)):
            if text and kw.pattern.search(text):
                return kw, where
    return None


@pytest.mark.parametrize("text", [
    "PHISHING", "pHiShInG attempt", "phıshing",          # dotless i: re's IGNORECASE takes it for i
    "ranſomware",                                        # long s: taken for s
    "Dataläcka", "DATALÄCKA", "data\n\tbreach", "leaked\u00a0data", "a breach-like word", "nothing here",
    "unbreachable", "", "GDPR incident", "gdpr", "Cryptolockers",
])
def test_security_hit_answers_as_a_search_word_by_word(text):
    rs = ruleset(security={"keywords": ["cryptolocker"], "breach_keywords": ["gdpr incident"]})
    for subject, body in ((text, ""), ("", text), (text, text), ("hello", f"x {text} y")):
        assert security_hit(rs, subject, body) == _security_hit_word_by_word(rs, subject, body), (subject, body)


@pytest.mark.parametrize("extra", [[], ["ſpam"], ["Kelvin\u212a"], ["brintrång"]])
@given(st.lists(st.sampled_from(["phishing ", "PHISHING", "phıshing", "ranſomware", "Dataläcka", "data", "DATA ",
                                 "spam", "SPAM ", "kelvink", "KELVINK", "brintrång", "BRINTRÅNG", "x", " ", "\n",
                                 "accounts ", "compromised"]) | st.text(max_size=8), max_size=12).map("".join))
def test_security_hit_answers_as_a_search_word_by_word_for_any_text(extra, text):
    """The ASCII short way (substrings of the lower case) gives the search's answer, for the
    default words and with a configured word holding a letter the search takes for an ASCII one
    (which turns the short way off) or a non-ASCII letter it does not."""
    rs = ruleset(security={"keywords": ["cryptolocker", *extra]})
    for subject, body in ((text, ""), ("", text), ("hello", f"x {text} y")):
        assert security_hit(rs, subject, body) == _security_hit_word_by_word(rs, subject, body), (subject, body)


def test_the_ascii_short_way_is_off_for_a_word_with_a_letter_folded_to_ascii():
    assert "phishing" in ruleset().ascii_first_words and "nätfiske" not in ruleset().ascii_first_words
    assert ruleset(security={"keywords": ["ſpam"]}).ascii_first_words is None
    assert security_hit(ruleset(security={"keywords": ["ſpam"]}), "SPAM offer", "")[0].word == "ſpam"


def test_no_security_words_at_all():
    rs = RuleSet(rules=(), keywords=(), matrix=DEFAULT_MATRIX, categories=frozenset())
    assert security_hit(rs, "phishing", "ransomware") is None


def test_security_keywords_extend_from_config():
    rs = ruleset(security={"keywords": ["cryptolocker"], "breach_keywords": ["gdpr incident"]})
    d1 = decide(rs, "a@b.c", "Cryptolocker screen", "", set())
    d2 = decide(rs, "a@b.c", "", "A GDPR   incident", set())
    assert d1.security and not d1.breach_report
    assert d2.security and d2.breach_report


def test_allowed_categories_from_service():
    rs = load_rules({"service": {"categories": ["network"]},
                     "rules": [{"name": "n", "subject": "x", "category": "network"}]}, F)
    assert rs.categories == {"network", "general", "security", "monitoring"}


@pytest.mark.parametrize("data,key,words", [
    ({"rules": [{"name": "a"}, {"name": "b", "subject": "(unclosed"}]}, "rules[1].subject",
     "broken regular expression"),
    ({"rules": [{"name": "a", "body": "*x"}]}, "rules[0].body", "broken regular expression"),
    ({"rules": [{"name": "a", "category": "plumbing"}]}, "rules[0].category", "not valid"),
    ({"service": {"categories": ["network"]}, "rules": [{"name": "a", "category": "printing"}]},
     "rules[0].category", "not valid"),
    ({"rules": [{"name": "a", "colour": "red"}]}, "rules[0].colour", "unknown key"),
    ({"rules": [{"subject": "x"}]}, "rules[0].name", "needs a name"),
    ({"rules": [{"name": "a"}, {"name": "a"}]}, "rules[1].name", "duplicate"),
    ({"rules": [{"name": "a", "impact": "huge"}]}, "rules[0].impact", "not valid"),
    ({"rules": [{"name": "a", "urgency": 3}]}, "rules[0].urgency", "not valid"),
    ({"rules": [{"name": "a", "priority": "P5"}]}, "rules[0].priority", "not valid"),
    ({"rules": [{"name": "a", "tier": 4}]}, "rules[0].tier", "not valid"),
    ({"rules": [{"name": "a", "tier": True}]}, "rules[0].tier", "not valid"),
    ({"rules": [{"name": "a", "type": "problem"}]}, "rules[0].type", "not valid"),
    ({"rules": [{"name": "a", "vip": "yes"}]}, "rules[0].vip", "true or false"),
    ({"rules": [{"name": "a", "from": []}]}, "rules[0].from", "non-empty"),
    ({"rules": [{"name": "a", "from": ["nobody"]}]}, "rules[0].from[0]", "neither"),
    ({"rules": [{"name": "a", "subject": ""}]}, "rules[0].subject", "non-empty"),
    ({"rules": {"name": "a"}}, "rules", "list of tables"),
    ({"rules": ["x"]}, "rules[0]", "must be a table"),
    ({"priority_matrix": {"huge": {"high": "P1"}}}, "priority_matrix.huge", "unknown impact"),
    ({"priority_matrix": {"high": {"now": "P1"}}}, "priority_matrix.high.now", "unknown urgency"),
    ({"priority_matrix": {"high": {"high": "P0"}}}, "priority_matrix.high.high", "not a priority"),
    ({"priority_matrix": {"high": "P1"}}, "priority_matrix.high", "must be a table"),
    ({"security": {"words": ["x"]}}, "security.words", "unknown key"),
    ({"security": {"keywords": "x"}}, "security.keywords", "list"),
    ({"service": {"categories": []}}, "service.categories", "non-empty"),
])
def test_config_errors_name_file_and_key(data, key, words):
    with pytest.raises(ConfigError) as exc:
        load_rules(data, F)
    assert exc.value.file == F and exc.value.key == key
    assert words in exc.value.problem


def test_service_section_must_be_a_table():
    with pytest.raises(ConfigError) as exc:
        load_rules({"service": "x"}, F)
    assert exc.value.key == "service.categories"
