"""A wheel built from the checkout carries the top-level templates/ as mailticket/templates,
installs in a fresh venv, and renders from that installed copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

RENDER = """
import json, sys
from mailticket.outbound.render import SHIPPED_DIR, Renderer
from mailticket.outbound.template_context import sample_context
mail = Renderer().render("acknowledgement", "sv", sample_context("acknowledgement"))
print(json.dumps({"shipped": str(SHIPPED_DIR), "subject": mail.subject, "text": mail.text}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``python -m build --wheel`` on a copy of the checkout's files (the build writes beside its sources)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source)
    for name in ("mailticket", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [built] = out.glob("mailticket-*.whl")
    return built


def test_the_wheel_carries_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"mailticket/templates/{p.relative_to(REPO / 'templates')}"
               for p in (REPO / "templates").rglob("*") if p.is_file()}
    assert shipped and shipped <= names
    assert not any(n.startswith("templates/") for n in names)  # nothing outside the package


def test_the_installed_wheel_renders_from_its_own_templates(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run = subprocess.run([str(python), "-c", RENDER], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert Path(shown["shipped"]).is_relative_to(venv)  # the installed copy, not the checkout
    assert Path(shown["shipped"]).parts[-2:] == ("mailticket", "templates")
    assert "SD#" in shown["subject"] and shown["text"].strip()
    check = subprocess.run([str(venv / "bin" / "mailticket"), "--config", str(REPO / "config" / "mailticket.toml"),
                            "check-config"], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
