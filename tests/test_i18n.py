"""The message catalogues: every word code writes into a mail has its Swedish, the catalogue works
from a checkout and from an installed wheel, and a Message keeps its words until the mail is written."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from mailticket import i18n
from mailticket.i18n import Message, _
from tests.harness import REPO


def test_every_msgid_of_the_code_is_in_the_catalogues(tmp_path):
    pybabel = REPO / ".venv" / "bin" / "pybabel"
    if not pybabel.exists():
        pytest.skip("pybabel not in .venv")
    pot = tmp_path / "fresh.pot"
    subprocess.run([str(pybabel), "extract", "--no-location", "--omit-header", "-k", "Message", "-k", "msg",
                    "-k", "N_", "-k", "_:2", "-o", str(pot), "mailticket"], cwd=REPO, check=True, capture_output=True)
    from babel.messages.pofile import read_po
    with pot.open("rb") as f:
        in_code = {m.id for m in read_po(f) if m.id}
    with (i18n.LOCALE_DIR / "sv" / "LC_MESSAGES" / "mailticket.po").open("rb") as f:
        in_sv = {m.id for m in read_po(f) if m.id}
    assert in_code - in_sv == set(), "run scripts/i18n and translate the new msgids"


def test_no_swedish_msgid_is_left_untranslated():
    assert i18n.missing("sv") == []
    assert i18n.available_locales() == ("en", "sv")


def test_translated_and_filled_in():
    assert _("sv", "'{word}' is not a priority", word="P7") == "”P7” är ingen prioritet"
    assert _("en", "'{word}' is not a priority", word="P7") == "'P7' is not a priority"
    assert _("de", "'{word}' is not a priority", word="P7") == "'P7' is not a priority"  # no catalogue: English


def test_a_message_is_its_english_text_and_keeps_its_words():
    reason = Message("resolved {ago} ago (auto-close after {after})", ago=timedelta(days=3, hours=1),
                     after=timedelta(days=3))
    assert reason == "resolved 3d 1h ago (auto-close after 3d)"  # logs and events read it as before
    assert pickle.loads(pickle.dumps(reason)).translated("sv") == "löst för 3d 1h sedan (stängs automatiskt efter 3d)"
    nested = Message("Status changed to {status}", status=Message("waiting for the requester"))
    assert nested.translated("sv") == "Status ändrad till väntar på anmälaren"


def test_translate_leaves_values_without_messages_as_they_are():
    context = {"a": [1, {"b": "text"}], "when": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    assert i18n.translate(context, "sv") is context
    translated = i18n.translate({"x": [Message("open")]}, "sv")
    assert translated == {"x": ["öppet"]} and type(translated["x"][0]) is str


def test_a_translation_with_a_wrong_field_falls_back_to_english(monkeypatch):
    class Broken:
        def gettext(self, msgid):
            return "{nonsense} ärende"
    monkeypatch.setattr(i18n, "gettext_for", lambda locale: Broken())
    assert Message("Escalated to tier {to_tier}", to_tier=2).translated("sv") == "Escalated to tier 2"


@pytest.mark.slow
def test_the_installed_wheel_carries_and_compiles_the_catalogue(tmp_path):
    source = tmp_path / "src"  # a copy: the build leaves build/ and *.egg-info where it runs
    source.mkdir()
    for part in ("pyproject.toml", "README.md", "mailticket", "templates"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, source / part, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / part).is_dir() else {}))
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and ("No module named build" in built.stderr or "Could not find a version" in built.stderr
                                  or "Failed to establish" in built.stderr):
        pytest.skip("the wheel cannot be built here (no build package, or no package index for its backend)")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mailticket/locale/sv/LC_MESSAGES/mailticket.po" in names
    assert "mailticket/templates/sv/_agent_top.txt" in names and "mailticket/templates/sv/_history.html" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import mailticket.i18n as i; assert 'site' in i.__file__, i.__file__; "
            "print(i._('sv', 'Escalated to tier {to_tier}', to_tier=2))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "Eskalerat till nivå 2", done.stderr
