"""An admin's override template that uses a value mailticket does not pass: check-config names the
template and the value, and the daemon refuses to start on it rather than send mail with a hole."""

from __future__ import annotations

from mailticket.outbound.render import Renderer
from mailticket.service.exitcodes import EXIT_CONFIG, EXIT_PROBLEM
from tests.harness import run_cli, write_config

# the old shipped mistake: the deadline is ticket.breach_report_deadline, not a value of its own
OVERRIDE = ("{% block subject %}{{ ticket.tag }} Säkerhetsincident{% endblock %}\n"
            "Anmäl senast {{ breach_report_deadline|when }}.\n")


def _override(tmp_path):
    folder = tmp_path / "templates"
    (folder / "sv").mkdir(parents=True)
    (folder / "sv" / "security_alert.txt").write_text(OVERRIDE, encoding="utf-8")
    return folder


def test_check_names_the_template_and_the_value(tmp_path):
    folder = _override(tmp_path)
    (problem,) = Renderer(folder).check()
    assert problem.startswith(f"{folder / 'sv' / 'security_alert.txt'}:2: UndefinedError: "
                              "'breach_report_deadline' is undefined")
    assert "mailticket does not pass that to security_alert" in problem and "ticket" in problem


def test_check_config_names_it_and_fails(tmp_path):
    path = write_config(tmp_path, extra={"service": {"templates_dir": str(_override(tmp_path))}})
    done = run_cli("check-config", config=path)
    assert done.returncode == EXIT_PROBLEM
    assert "security_alert.txt:2" in done.stdout and "'breach_report_deadline' is undefined" in done.stdout


def test_the_daemon_refuses_to_start_on_it(tmp_path):
    path = write_config(tmp_path, extra={"service": {"templates_dir": str(_override(tmp_path))}})
    done = run_cli("run", config=path, timeout=60)
    assert done.returncode == EXIT_CONFIG
    assert "security_alert.txt:2" in done.stderr and "'breach_report_deadline' is undefined" in done.stderr
    assert "not started" in done.stderr


def test_the_shipped_templates_pass_the_check(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    assert Renderer(folder).check() == []
