"""The end-of-run table: columns laid out by hand (rich's Table takes seconds at 10,000
stacks), aligned whatever the names, plain in a log and styled on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from tfrun import ui
from tfrun.report import Result, RunReport

RESULTS = {
    "prod-eu-west-1/network": Result.succeeded(exit_code=0),
    "staging-eu-west-1/platform/eks": Result.failed("terraform apply failed (exit 1)"),
    "shared-services/iam-é": Result.skipped("network failed"),
}


def summary(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=200, highlight=False)
    monkeypatch.setattr(ui, "_err", lambda: console)
    report = RunReport("apply", RESULTS, run_dir=Path("/tmp/runs"), duration_s=3.0)
    ui.RunDisplay(list(RESULTS), "apply", False, Path("/tmp/runs")).summary(report)
    return out.getvalue()


def test_columns_line_up_under_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = summary(monkeypatch, terminal=False).splitlines()
    header, rule, *rows = lines[:5]
    assert header.split() == ["stack", "result", "duration", "changes"]
    assert set(rule) == {"─"} and len(rule) >= len(header.rstrip())
    column = header.index("result")
    for name, row in zip(RESULTS, rows, strict=False):
        assert row.startswith(name)
        assert row[column - 2 : column] == "  " and row[column] != " ", row
    assert [row[column:].split()[0] for row in rows] == ["succeeded", "failed", "skipped"]


def test_a_terminal_gets_the_same_table_styled(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = summary(monkeypatch, terminal=False)
    styled = summary(monkeypatch, terminal=True)
    assert "\x1b[" in styled
    assert re.sub(r"\x1b\[[0-9;]*m", "", styled) == plain
