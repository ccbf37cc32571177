"""One rule for every time shown: truncated toward zero, like a stopwatch, by one helper
(pagerdrill.timefmt) that the TUI, the CLI, the summary and every export use. No servers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import pagerdrill_cli, write_workspace
from pagerdrill.reports.html import render_html
from pagerdrill.reports.text import markdown, slack_messages
from pagerdrill.reports.timeline import load
from pagerdrill.timefmt import clock, duration, mmss, mmss_tenths
from pagerdrill.tui.screens.summary import summary_text

REPO = Path(__file__).resolve().parents[2]
JOURNALS = REPO / "tests" / "fixtures" / "journals"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (7.81, "0:07"), (59.99, "0:59"), (60, "1:00"), (600, "10:00"), (3599.9, "59:59")],
)
def test_mmss_truncates_like_a_stopwatch(seconds, text):
    assert mmss(seconds) == text


def test_every_form_of_a_time_truncates_the_same_way():
    assert mmss_tenths(7.81) == "0:07.8"
    assert mmss_tenths(2.3) == "0:02.3"  # 2.3 is 2.2999... as a float; still 2.3
    assert clock(7.81) == "T+00:07"
    assert clock(7.81, tenths=True) == "T+00:07.8"
    assert clock(-4.9) == "T-00:04"
    assert clock(-0.4) == "T+00:00"
    assert duration(7.81) == "7.8s"
    assert duration(61.9) == "1m 01s"
    assert mmss(None) == "—" and mmss(None, none="-") == "-" and clock(None) == ""


def _journal_with_ack_at(tmp_path: Path, seconds: float) -> Path:
    """The recorded bullmq drill with its acknowledgement moved to `seconds` after the page."""
    lines = [
        json.loads(x) for x in (JOURNALS / "bullmq-backpressure.jsonl").read_text().splitlines()
    ]
    page_t = next(e["t"] for e in lines if e["type"] == "page")
    for e in lines:
        if e["type"] == "ack" or (e["type"] == "step.done" and e.get("step") == "acknowledge"):
            e["drill_s"] = seconds
            e["t"] = page_t + seconds
    path = tmp_path / "drills" / f"{lines[0]['drill']}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def test_an_ack_at_7_81_s_reads_0_07_in_the_tui_the_cli_and_every_export(tmp_path):
    journal = _journal_with_ack_at(tmp_path, 7.81)
    tl = load(journal)
    slack = "\n".join(slack_messages(tl))
    assert "T+00:07 — *Ana Lima*: acknowledged" in slack
    md = markdown(tl)
    assert "| Acknowledged | 0:07 |" in md
    assert "| Acknowledge in the incident channel | 0:07 |" in md
    html = render_html(tl)
    assert "<dt>Time to acknowledge</dt><dd>0:07</dd>" in html
    assert '<td class="num">0:07</td>' in html
    assert "7.8s" not in html and "0:08" not in html.split("<section><h2>Timeline")[0]
    assert "acknowledged at 0:07" in summary_text(tl.summary).plain
    root = write_workspace(tmp_path / "ws")
    (root / "drills").mkdir()
    journal.rename(root / "drills" / journal.name)
    listed = pagerdrill_cli("drills", "list", "-w", str(root), timeout=60)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "bullmq" in line)
    assert " 0:07 " in row and "0:08" not in row


def test_no_module_formats_minutes_and_seconds_by_itself():
    """The helper is the only place that turns seconds into M:SS."""
    src = REPO / "src" / "pagerdrill"
    copies = []
    for path in src.rglob("*.py"):
        if path.name == "timefmt.py" or "refstack" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"// ?60\b|% ?60\b|divmod\([^)]*60", line):
                copies.append(f"{path.relative_to(src)}:{n}: {line.strip()}")
    assert not copies, "\n".join(copies)
