"""The layering of mailticket/ is checked, not only drawn: the import-linter contracts in
pyproject.toml hold, a wrong arrow breaks them, and no module imports itself round a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
SUBPACKAGES = ("inbound", "desk", "outbound", "service")


def lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the package and pyproject.toml in ``root`` (no cache written into it)."""
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layering_contracts_hold():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_wrong_arrow_breaks_a_contract(tmp_path):
    """Reading mail that imports the desk is exactly what the contracts are there to stop."""
    shutil.copytree(REPO / "mailticket", tmp_path / "mailticket", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    parse = tmp_path / "mailticket" / "inbound" / "parse.py"
    parse.write_text(parse.read_text() + "\nfrom ..desk import tickets  # a wrong arrow\n")
    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout and "mailticket.inbound.parse -> mailticket.desk.tickets" in done.stdout


def test_no_module_is_part_of_an_import_cycle():
    graph = grimp.build_graph("mailticket")
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(" -> ".join((importer,) + tuple(back)))
    assert cycles == []


def test_every_module_lives_in_a_subpackage_but_the_shared_basics():
    top = sorted(p.name for p in (REPO / "mailticket").iterdir() if p.name != "__pycache__")
    assert top == ["__init__.py", "clock.py", "config.py", "db.py", "desk", "disk.py", "durations.py",
                   "errors.py", "i18n.py", "inbound", "locale", "marks.py", "models.py", "outbound", "service",
                   "sizes.py"]
    for name in SUBPACKAGES:
        doc = (REPO / "mailticket" / name / "__init__.py").read_text()
        assert doc.startswith('"""') and "import" in doc.lower(), name  # says what it may import
