"""systemd/mailticket.service passes `systemd-analyze verify` and scores 3.0 or better in
`systemd-analyze security` (both run offline; PID 1 need not be systemd).

verify checks that ExecStart= names an executable file. The unit names the installed
/usr/local/bin/mailticket, which a test machine need not have, so verify runs on a copy whose
ExecStart= points at a stand-in executable of the same name; every other line is the shipped one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.servers import system

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "mailticket.service"
MAX_EXPOSURE = 3.0


@pytest.fixture(scope="module")
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None and system.apt_install("systemd"):
        tool = shutil.which("systemd-analyze")
    if tool is None:
        unavailable("systemd-analyze is not installed (apt-get install systemd)")
    done = subprocess.run([tool, "security", "--help"], capture_output=True, text=True)
    if "--offline" not in done.stdout:
        unavailable(f"{tool} has no --offline (systemd 252 or newer is needed)")
    return tool


def unit_text() -> str:
    return UNIT.read_text(encoding="utf-8")


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def copy_with_stand_in(tmp_path: Path) -> Path:
    """The unit with ExecStart= pointing at an executable stand-in in tmp_path."""
    stand_in = tmp_path / "bin" / "mailticket"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    text, n = re.subn(r"^ExecStart=/usr/local/bin/mailticket ", f"ExecStart={stand_in} ", unit_text(), flags=re.M)
    assert n == 1, "the unit should start /usr/local/bin/mailticket"
    copy = tmp_path / "mailticket.service"
    copy.write_text(text)
    return copy


def test_verify_passes(analyze, tmp_path):
    done = subprocess.run([analyze, "verify", str(copy_with_stand_in(tmp_path))], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mailticket.service" not in done.stderr, done.stderr  # no warning about our unit either


def test_verify_finds_a_broken_unit(analyze, tmp_path):
    """The check itself can fail: a misspelt setting is reported."""
    copy = copy_with_stand_in(tmp_path)
    copy.write_text(copy.read_text().replace("ProtectSystem=strict", "ProtectSystem=stirct"))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, cwd=tmp_path)
    assert "mailticket.service:" in done.stderr and "stirct" in done.stderr


def exposure(analyze: str, unit: Path) -> float:
    done = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True, cwd=unit.parent)
    match = re.search(r"Overall exposure level for mailticket\.service: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


def test_security_exposure_is_3_or_better(analyze, tmp_path):
    score = exposure(analyze, copy_with_stand_in(tmp_path))
    assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}"


def test_security_score_falls_without_the_sandbox(analyze, tmp_path):
    """The score measures the sandbox lines: without them the same unit scores far worse."""
    sandbox = re.compile(r"^(Protect|Private|Restrict|NoNewPrivileges|CapabilityBoundingSet|SystemCall|"
                         r"MemoryDeny|LockPersonality|User|Group|UMask|ProcSubset|DevicePolicy|IPAddress)", re.M)
    copy = copy_with_stand_in(tmp_path)
    bare = "\n".join(ln for ln in copy.read_text().splitlines() if not sandbox.match(ln))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "mailticket.service").write_text(bare)
    assert exposure(analyze, plain / "mailticket.service") > MAX_EXPOSURE + 3


def test_sysusers_file_makes_the_service_user(tmp_path):
    """systemd-sysusers reads our file and would create the user the unit runs as."""
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        unavailable("systemd-sysusers is not installed (apt-get install systemd)")
    conf = UNIT.with_name("mailticket.sysusers")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    done = subprocess.run([tool, f"--root={root}", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    passwd = (root / "etc" / "passwd").read_text()
    [line] = [ln for ln in passwd.splitlines() if ln.startswith("mailticket:")]
    assert line.split(":")[5:] == ["/var/lib/mailticket", "/usr/sbin/nologin"]


def test_unit_has_what_an_admin_expects():
    s = settings(unit_text())
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecStart"][0].split()[1:] == ["--config", "/etc/mailticket/mailticket.toml", "run"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["StateDirectory"] == ["mailticket"] and s["User"] == ["mailticket"] and s["Group"] == ["mailticket"]
    # each credential file is named as the credential, so CREDENTIALS_DIRECTORY=/etc/mailticket/credentials
    # gives a root shell the same view as the service (docs/operations.md)
    assert sorted(s["LoadCredential"]) == ["imap:/etc/mailticket/credentials/imap",
                                           "smtp:/etc/mailticket/credentials/smtp"]
    for key, value in (("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("NoNewPrivileges", "yes"),
                       ("PrivateTmp", "yes")):
        assert s[key] == [value], key
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "WatchdogSec" in s
