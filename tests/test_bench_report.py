"""bench/report.py runs end to end on a small set (the real run is 1,000,000 tickets, not a test)."""

import subprocess
import sys

from tests.harness import REPO


def test_the_report_bench_runs_on_a_small_set():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "report.py"), "-n", "400", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("SQLite, 400 tickets: report ") and "ratio time" in line
    assert "report saw 396 user tickets, 4 alerts" in line
