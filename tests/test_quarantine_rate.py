"""The share of real mails quarantined stays under the bar of 3 % (SPEC "Admin safety", issue 24):
every mail of the corpora through the real pipeline (bench/quarantine_rate.py)."""

from __future__ import annotations

import pytest

from bench.corpora_path import find_corpora, is_bundled
from bench.quarantine_rate import measure, table

# The bundled share keeps the reply-stripping fixtures whole (bodies, most without any sender)
# and only a third of the real mails, so its rate is higher by construction: there the count of
# 2026-12-06 is the bar, so that no change quarantines more.
BUNDLED_MOST = 33


@pytest.mark.slow
def test_quarantine_rate_of_the_corpora_stays_under_3_percent():
    corpora = find_corpora()
    if not corpora.is_dir():
        pytest.skip(f"corpora not found at {corpora} (set MAILTICKET_CORPORA)")
    rows = measure(corpora)
    mails, quarantined = sum(r["mails"] for r in rows), sum(r["quarantined"] for r in rows)
    reasons = [reason for r in rows for _, reason in r["reasons"]]
    assert not [r for r in reasons if r.startswith("internal error")], table(rows, listing=True)
    if is_bundled(corpora):
        assert mails > 500 and quarantined <= BUNDLED_MOST, table(rows, listing=True)
    else:
        assert mails > 1000 and quarantined < 0.03 * mails, table(rows, listing=True)
