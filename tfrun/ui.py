"""The one place that prints, and the only module that imports rich.

Long on purpose: every way tfrun shows something (messages, tables, the run's board, its
follower without a terminal, the summary, the outputs) lives here so that nothing else prints.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfrun import durations
from tfrun.errors import UsageError
from tfrun.report import Event, Finished, Notice, Progress, Result, RunReport, Started, Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    from tfrun.drift import DriftReport


class _Rich:
    """rich, imported when something is first shown: a command that prints nothing of its
    own (the laptop wrapper's usual case) never pays for it."""

    if TYPE_CHECKING:
        box: Any
        Live: type[Live]
        Table: type[Table]
        Text: type[Text]

    def __getattr__(self, name: str) -> Any:
        from rich import box
        from rich.live import Live
        from rich.table import Table
        from rich.text import Text

        self.__dict__.update(box=box, Live=Live, Table=Table, Text=Text)
        return self.__dict__[name]


_R = _Rich()


@cache
def _consoles() -> tuple[Console, Console]:
    from rich.console import Console

    # stderr carries tfrun's own messages so that stdout stays terraform's (`output -json`).
    return (
        Console(stderr=True, highlight=False, soft_wrap=True),
        Console(highlight=False, soft_wrap=True),
    )


def _err() -> Console:
    return _consoles()[0]


def _out() -> Console:
    return _consoles()[1]


def error(message: str) -> None:
    # Text, not markup: messages quote user input, which may hold "[...]".
    _err().print(_R.Text.assemble(("tfrun: error: ", "bold red"), message))


def info(message: str) -> None:
    _err().print(_R.Text.assemble(("tfrun: ", "dim"), message))


def can_ask() -> bool:
    """Whether a person is at a terminal to answer `ask`."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def live_board() -> bool:
    """Whether a run's progress can be drawn as a live board (stderr is a terminal)."""
    return sys.stderr.isatty()


def ask(prompt: str) -> str:
    """One line typed by the person at the terminal; empty at end of input."""
    _err().print(_R.Text(prompt), end=" ")
    try:
        return input()
    except EOFError:
        return ""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain table on stdout: a report a person reads (tfrun whoami)."""
    shown = _R.Table(box=_R.box.SIMPLE_HEAD, pad_edge=False)
    for header in headers:
        shown.add_column(header, overflow="fold")
    for row in rows:
        shown.add_row(*(_R.Text(cell) for cell in row))
    _out().print(shown)


def out(text: str) -> None:
    """Plain program output (graph, generated pipelines): never styled, never wrapped."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# --- The run display: a live board on a terminal, one block per stack otherwise ------------
#
# Fed by the runner's events. terraform's output never reaches the screen while it runs: it is
# in the per-stack log files, and is printed from there whole, so stacks never interleave.

_STATUS_STYLE = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.INTERRUPTED: "magenta",
    Status.REFUSED: "bold red",
    Status.WAITING: "yellow",
}
# Rows the board keeps for its title, header and the line that counts the rows left out.
_BOARD_CHROME = 6
# Without a terminal (CI), how often a running stack says it is still running: CI services
# end a job that prints nothing for 10 minutes, and a long apply is silent.
DEFAULT_HEARTBEAT_S = 30.0


def heartbeat_interval(environ: Mapping[str, str] = os.environ) -> float:
    """`TFRUN_HEARTBEAT_S` (seconds, more than 0), else the default; read when a run starts,
    so that a bad value is the run's one error, not a crash on import."""
    text = environ.get("TFRUN_HEARTBEAT_S", "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise UsageError(
            f"TFRUN_HEARTBEAT_S={text!r}: give the seconds between a running stack's "
            "'still running' lines as a number above 0 (default 30), or unset it."
        )
    return value


# How often the follower looks at the logs of running stacks.
_FOLLOW_TICK_S = 0.5


def _changes(result: Result | None, *, provisional: bool = True) -> Text:
    if result is None or result.changes is None:
        return _R.Text("")
    changes = result.changes
    text = _R.Text.assemble(
        (f"+{changes.add}", "green" if changes.add else "dim"),
        " ",
        (f"~{changes.change}", "yellow" if changes.change else "dim"),
        " ",
        (f"-{changes.destroy}", "red" if changes.destroy else "dim"),
    )
    if result.output_changes and not changes.total:
        text.append(" outputs", "yellow")
    if provisional and result.provisional:
        text.append(" provisional", "bold yellow")
    return text


def _note(result: Result) -> str:
    notes = [result.reason] if result.reason else []
    if result.planned_outputs:
        notes.append(
            "provisional, read the planned outputs of " + ", ".join(result.planned_outputs)
        )
    elif result.provisional:
        notes.append(
            "provisional: "
            + ", ".join(result.provisional)
            + " will change outputs first; plan again after applying it"
        )
    if result.attempts > 1 and result.ok:
        notes.append(f"succeeded on attempt {result.attempts}")
    return "; ".join(notes)


class ForegroundDisplay:
    """One stack in the foreground: terraform has the terminal, so tfrun says only what
    terraform cannot (init starting, a lock waited for, why tfrun itself stopped the stack)."""

    def __enter__(self) -> ForegroundDisplay:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice) and event.node:
            info(f"{event.node}: {event.text}.")

    def summary(self, report: RunReport) -> None:
        for node, result in report.results.items():
            # terraform printed its own errors for its command; the rest are tfrun's to tell.
            own = result.reason.startswith(f"terraform {report.command} failed")
            if result.status in (Status.FAILED, Status.REFUSED) and not own:
                where = f" (log: {result.log})" if result.log is not None else ""
                error(f"{node}: {result.reason}{where}")


class RunDisplay:
    """The sink of a run's events, and the summary at its end. The logs of an `output` run
    go to stderr: its stdout is the outputs alone (`print_outputs`)."""

    def __init__(
        self,
        nodes: Sequence[str],
        command: str,
        live: bool,
        run_dir: Path,
        heartbeat_s: float | None = None,
    ) -> None:
        self.nodes = list(nodes)
        self.command = command
        self.live = live
        self.run_dir = run_dir
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else heartbeat_interval()
        # Where the logs go: stdout, except in an `output` run, whose stdout is the outputs.
        self.console = _err() if command == "output" else _out()
        # The board renders from rich's refresh thread, and the log follower from its own,
        # while events arrive on the event loop.
        self._lock = threading.Lock()
        self._phase: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._results: dict[str, Result] = {}
        self._live: Live | None = None
        self._follower: _Follower | None = None

    def __enter__(self) -> RunDisplay:
        if self.live:
            self._live = _R.Live(self, console=_err(), refresh_per_second=4, transient=True)
            self._live.start()
        else:
            self._follower = _Follower(self)
            self._follower.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._follower is not None:
            self._follower.stop()
        if self._live is not None:
            self._live.stop()
            self._live = None
            # The board is gone; what needs reading next is what failed and what would change.
            for node in self.nodes:
                result = self._results.get(node)
                if (
                    result is not None
                    and result.log is not None
                    and (result.status in (Status.FAILED, Status.INTERRUPTED) or result.has_changes)
                ):
                    self._block(node, result)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The live board off while a question is asked on the terminal, then back."""
        live = self._live
        if live is not None:
            live.stop()
        try:
            yield
        finally:
            if live is not None:
                live.start()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Started):
                self._started[event.node] = time.monotonic()
                self._phase[event.node] = "starting"
            elif isinstance(event, Progress):
                self._phase[event.node] = event.phase
            elif isinstance(event, Finished):
                self._phase.pop(event.node, None)
                self._results[event.node] = event.result
        if isinstance(event, Notice):
            info(f"{event.node}: {event.text}" if event.node else event.text)
        elif self._follower is not None and isinstance(event, Started):
            self._follower.started(event.node)
        elif self._follower is not None and isinstance(event, Finished):
            self._follower.finished(event.node, event.result)

    def _block(self, node: str, result: Result, *, shown: int = 0) -> None:
        """The stack's whole log under a header; `shown` bytes of it were streamed already."""
        header = _R.Text.assemble(
            ("── ", "dim"),
            (node, "bold"),
            " · ",
            (str(result.status), _STATUS_STYLE[result.status]),
        )
        if result.status is not Status.SKIPPED:
            header.append(f" · {durations.show(result.duration_s)}")
        if result.changes is not None:
            header.append(" · ")
            header.append_text(_changes(result))
        console = self.console
        console.print(header)
        content = ""
        if result.log is not None:
            with suppress(OSError), result.log.open("rb") as log:
                log.seek(shown)
                content = log.read().decode("utf-8", "replace")
        if content:
            console.file.write(content if content.endswith("\n") else content + "\n")
        elif result.reason:  # skipped or refused before a log was started
            console.print(
                _R.Text(f"{result.status}: {result.reason}", _STATUS_STYLE[result.status])
            )
        console.file.flush()

    def __rich__(self) -> Table:
        with self._lock:
            now = time.monotonic()
            running = [node for node in self.nodes if node in self._phase]
            finished = [node for node in self.nodes if node in self._results]
            budget = max(3, _err().height - _BOARD_CHROME)
            # Running stacks first, then what went wrong, then the rest that finished.
            wrong = [n for n in finished if not self._results[n].ok]
            shown = set(running[:budget])
            for node in wrong + [n for n in finished if self._results[n].ok]:
                if len(shown) >= budget:
                    break
                shown.add(node)
            table = _R.Table(
                title=f"tfrun {self.command}: {len(finished)}/{len(self.nodes)} done, "
                f"{len(running)} running",
                title_justify="left",
                box=None,
                pad_edge=False,
            )
            for column in ("stack", "state", "elapsed", "changes"):
                table.add_column(column, no_wrap=True)
            for node in self.nodes:
                if node not in shown:
                    continue
                result = self._results.get(node)
                if result is None:
                    elapsed = now - self._started[node]
                    state = _R.Text(self._phase[node], "cyan")
                else:
                    elapsed = result.duration_s
                    state = _R.Text(str(result.status), _STATUS_STYLE[result.status])
                shown_elapsed = (
                    "" if result and result.status is Status.SKIPPED else durations.show(elapsed)
                )
                table.add_row(node, state, shown_elapsed, _changes(result))
            hidden = len(self.nodes) - len(shown)
            if hidden:
                queued = len(self.nodes) - len(running) - len(finished)
                table.caption = f"… and {hidden} more ({queued} waiting)"
                table.caption_justify = "left"
            return table

    def summary(self, report: RunReport) -> None:
        # Notes go under the table, one per line: in a column they would be folded into a
        # sliver on an 80-column CI log.
        rows: list[tuple[tuple[str, str] | Text, ...]] = []
        notes = _R.Text()
        for node, result in report.results.items():
            marked = node + (" *" if result.provisional else "")
            skipped = result.status is Status.SKIPPED
            rows.append(
                (
                    (marked, ""),
                    (str(result.status), _STATUS_STYLE[result.status]),
                    ("" if skipped else durations.show(result.duration_s), ""),
                    _changes(result, provisional=False),
                )
            )
            note = _note(result)
            if note:
                notes.append(f"  {marked}: ", "bold")
                notes.append(note + "\n", "" if result.ok else _STATUS_STYLE[result.status])
        _print_long(_err(), _columns(("stack", "result", "duration", "changes"), rows))
        if notes:
            notes.rstrip()
            _err().print(notes)
        counts = report.counts()
        parts = [f"{counts[status]} {status}" for status in Status if counts[status]]
        line = ", ".join(parts) + f" in {durations.show(report.duration_s)}"
        if report.run_dir is not None:
            line += f"; logs in {report.run_dir}"
        _err().print(_R.Text(line, "bold red" if counts[Status.FAILED] else "bold"))


def _columns(header: Sequence[str], rows: Sequence[Sequence[tuple[str, str] | Text]]) -> Text:
    """A table laid out by hand, columns two spaces apart under a bold header and a rule;
    a cell is text and its style, or a Text. rich's Table measures every cell, which takes
    seconds at 10,000 stacks."""

    def width(cell: tuple[str, str] | Text) -> int:
        return _cell_len(cell[0]) if isinstance(cell, tuple) else cell.cell_len

    widths = [len(name) for name in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], width(cell))
    table = _R.Text()
    last = len(header) - 1
    for i, name in enumerate(header):
        table.append(name if i == last else name.ljust(widths[i] + 2), "bold")
    table.append("\n" + "─" * (sum(widths) + 2 * last))
    for row in rows:
        table.append("\n")
        for i, cell in enumerate(row):
            if isinstance(cell, tuple):
                table.append(cell[0], cell[1] or None)
            else:
                table.append_text(cell)
            if i != last:
                table.append(" " * (widths[i] - width(cell) + 2))
    return table


def _print_long(console: Console, text: Text) -> None:
    """A long Text (a line per stack): plain when the console shows no styles (a CI log, a
    file), which spares rich splitting it into styled segments."""
    if console.color_system is None:
        console.file.write(text.plain + "\n")
        console.file.flush()
    else:
        console.print(text)


def _cell_len(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


class _Follower:
    """Progress without a terminal: a line when a stack starts, its output streamed live
    (prefixed with its name) while it is the only one running, otherwise a heartbeat per
    running stack with its phase, time and the last line terraform wrote. Each finished
    stack's log is then printed whole, less what was streamed."""

    def __init__(self, display: RunDisplay) -> None:
        self.display = display
        self._shown: dict[str, int] = {}  # bytes of each log already streamed
        self._told: dict[str, float] = {}  # when each running stack last printed anything
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tfrun log follower", daemon=True)
        self._print = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def started(self, node: str) -> None:
        with self._print:
            self._told[node] = time.monotonic()
            self.display.console.print(
                _R.Text.assemble(("── ", "dim"), (node, "bold"), " · started")
            )
            self.display.console.file.flush()

    def finished(self, node: str, result: Result) -> None:
        with self._print:
            self._told.pop(node, None)
            self.display._block(node, result, shown=self._shown.pop(node, 0))

    def _run(self) -> None:
        while not self._stopping.wait(_FOLLOW_TICK_S):
            with self.display._lock:
                running = {node: self.display._phase[node] for node in self.display._phase}
            with self._print:
                if len(running) == 1:
                    self._stream(next(iter(running)))
                else:
                    self._heartbeats(running)

    def _log(self, node: str) -> Path:
        return self.display.run_dir / f"{node}.log"

    def _stream(self, node: str) -> None:
        if node not in self._told:
            return  # finished meanwhile
        with suppress(OSError), self._log(node).open("rb") as log:
            log.seek(self._shown.get(node, 0))
            data = log.read()
            whole = data[: data.rfind(b"\n") + 1]  # complete lines only
            if whole:
                for line in whole.decode("utf-8", "replace").splitlines():
                    self.display.console.file.write(f"{node} │ {line}\n")
                self.display.console.file.flush()
                self._shown[node] = self._shown.get(node, 0) + len(whole)
                self._told[node] = time.monotonic()

    def _heartbeats(self, running: dict[str, str]) -> None:
        now = time.monotonic()
        for node, phase in running.items():
            if node not in self._told or now - self._told[node] < self.display.heartbeat_s:
                continue
            self._told[node] = now
            elapsed = now - self.display._started.get(node, now)
            line = _R.Text.assemble(
                ("── ", "dim"), (node, "bold"), f" · still {phase} · {durations.show(elapsed)}"
            )
            last = _last_line(self._log(node))
            if last:
                line.append(f" · last: {last}", "dim")
            self.display.console.print(line)
        self.display.console.file.flush()


def _last_line(log: Path, tail: int = 4096) -> str:
    try:
        with log.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - tail))
            lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


def removals(found: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> None:
    """What the reviewed plans destroy and replace, by address, before the one approval."""
    lines = _R.Text()
    for rel, (destroyed, replaced) in found.items():
        for label, addresses, style in (
            ("destroys", destroyed, "red"),
            ("replaces", replaced, "yellow"),
        ):
            if addresses:
                lines.append(f"  {rel} {label}: ", "bold")
                lines.append(", ".join(addresses) + "\n", style)
    if lines:
        lines.rstrip()
        _err().print(_R.Text("Resources these plans remove:\n", "bold red") + lines)


def drift_summary(report: DriftReport) -> None:
    """`tfrun drift`'s answer on stdout: each drifted stack with its resources, each failed
    stack with why, then one line of counts."""
    drifted = [s for s in report.stacks if s.verdict == "drifted"]
    failed = [s for s in report.stacks if s.verdict == "failed"]
    clean = len(report.stacks) - len(drifted) - len(failed)
    text = _R.Text()
    for stack in drifted:
        text.append(stack.path, "bold")
        text.append(" drifted", "yellow")
        text.append(f" (state {stack.key})\n", "dim")
        for title, changes in (
            ("changed outside terraform", stack.drift),
            ("an apply would change", stack.changes),
        ):
            for change in changes:
                text.append(f"  {title}: ", "dim")
                text.append(f"{change}\n")
        if stack.outputs:
            text.append("  outputs an apply would change: ", "dim")
            text.append(", ".join(stack.outputs) + "\n")
    for stack in failed:
        text.append(stack.path, "bold")
        text.append(f" {stack.status}", _STATUS_STYLE[Status(stack.status)])
        text.append(f": {stack.reason}" if stack.reason else "")
        text.append(f" (log: {stack.log})\n" if stack.log else "\n", "dim")
    line = f"drift: {len(drifted)} drifted, {len(failed)} failed, {clean} clean"
    text.append(line, "bold red" if failed else "bold yellow" if drifted else "bold green")
    _out().print(text)


def print_outputs(outputs: Mapping[str, str | None], *, as_json: bool) -> None:
    """The outputs of many stacks, in the order given: with `as_json`, one JSON object
    {stack: its `output -json`, or null without a state}; else each stack's block."""
    if as_json:
        document = {
            rel: None if text is None else json.loads(text) for rel, text in outputs.items()
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        for rel, text in outputs.items():
            shown = "(no state)\n" if text is None else text
            sys.stdout.write(f"# {rel}\n{shown}")
    sys.stdout.flush()
