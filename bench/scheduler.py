"""How close the runner's schedule comes to the best possible, and what it costs in CPU.

    python bench/scheduler.py [--stacks 200] [--layers 10] [--parallelism 8]
                              [--min-s 0.2] [--max-s 0.6] [--seed 1] [--display]

Builds a live repository of `--stacks` stacks in `--layers` layers; each stack past the first
layer depends on 1-3 stacks of the layer before (sometimes also one further up). A fake
terraform (a shell script) sleeps a known, per-stack time for `apply`, and returns at once for
anything else. After one untimed run that initialises every stack, it times `tfrun apply`
over all of them through the real pipeline (locks, generation, init check, process groups,
log files), and prints:

* wall ÷ lower bound, where the lower bound is the larger of the critical path (the longest
  chain of sleeps) and total sleep ÷ parallelism: no schedule can beat it. Target ≤ 1.05.
* tfrun's own CPU per stack: user + system time of this process (getrusage RUSAGE_SELF, so
  the children's time is not counted) during the timed run, ÷ stacks. Target ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from tfrun import terraform
from tfrun.discovery import Repository, Stack
from tfrun.report import Event, Result, RunReport, Status
from tfrun.run import engine as runner

FAKE_TERRAFORM = """#!/bin/sh
# Sleeps the stack's time for apply in the timed run; everything else returns at once.
if [ "$1" = apply ] && [ -n "$TFRUN_BENCH_TIMED" ]; then
    read seconds < .bench_sleep
    exec sleep "$seconds"
fi
exit 0
"""
ROOT_CONFIG = """\
state {
  bucket = "bench-tfstate"
  region = "eu-west-1"
}
environments {
  dev = { account_id = "111111111111" }
}
"""


def build_dag(
    stacks: int, layers: int, rng: random.Random
) -> tuple[list[str], dict[str, set[str]]]:
    per_layer = -(-stacks // layers)
    names: list[list[str]] = []
    deps: dict[str, set[str]] = {}
    for layer in range(layers):
        count = min(per_layer, stacks - layer * per_layer)
        row = [f"dev-eu-west-1/l{layer:02d}/s{i:03d}" for i in range(count)]
        for name in row:
            needs: set[str] = set()
            if layer:
                needs |= set(rng.sample(names[-1], k=min(len(names[-1]), rng.randint(1, 3))))
                if layer > 1 and rng.random() < 0.3:
                    needs.add(rng.choice(names[rng.randrange(layer - 1)]))
            deps[name] = needs
        names.append(row)
    return [name for row in names for name in row], deps


def lower_bound(
    order: list[str], deps: dict[str, set[str]], sleep: dict[str, float], parallelism: int
) -> tuple[float, float, float]:
    finish: dict[str, float] = {}
    for name in order:  # layer order is a topological order
        finish[name] = sleep[name] + max((finish[d] for d in deps[name]), default=0.0)
    critical = max(finish.values())
    work = sum(sleep.values()) / parallelism
    return max(critical, work), critical, work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=int, default=200)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--min-s", type=float, default=0.2)
    parser.add_argument("--max-s", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--display", action="store_true", help="print per-stack blocks (to /dev/null)"
    )
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    order, deps = build_dag(args.stacks, args.layers, rng)
    sleep = {name: round(rng.uniform(args.min_s, args.max_s), 3) for name in order}
    bound, critical, work = lower_bound(order, deps, sleep, args.parallelism)

    with tempfile.TemporaryDirectory(prefix="tfrun-bench-") as temp:
        base = Path(temp)
        live = base / "live"
        live.mkdir()
        (live / "tfrun.hcl").write_text(ROOT_CONFIG, encoding="utf-8")
        for name in order:
            path = live / name
            path.mkdir(parents=True)
            (path / "main.tf").write_text('resource "terraform_data" "x" {}\n', encoding="utf-8")
            (path / ".bench_sleep").write_text(f"{sleep[name]}\n", encoding="utf-8")
        fake = base / "terraform"
        fake.write_text(FAKE_TERRAFORM, encoding="utf-8")
        fake.chmod(0o755)
        stacks = Repository(live).stacks()
        assert [s.rel for s in stacks] == sorted(order)

        events: list[Event] = []

        def options(run_dir: Path) -> runner.RunOptions:
            return runner.RunOptions(
                parallelism=args.parallelism,
                # Resolved per run: the environment tells the fake whether a run is timed.
                terraform=terraform.resolve(Repository(live), str(fake)),
                run_dir=run_dir,
                sink=None if args.display else events.append,
            )

        # Untimed: writes the generated files and runs init everywhere, as a first run would.
        runner.run(stacks, deps, "apply", [], options(base / "warm-up"))
        (live / runner.DURATIONS_FILE).unlink()
        os.environ["TFRUN_BENCH_TIMED"] = "1"
        timed = [timed_run(stacks, deps, options(base / f"timed{i}"), args.display) for i in (1, 2)]
        for report, _, _ in timed:
            failed = [p for p, r in report.results.items() if r.status is not Status.SUCCEEDED]
            if failed:
                print(f"{len(failed)} stacks did not succeed, e.g. {report.results[failed[0]]}")
                return 1

    edges = sum(len(d) for d in deps.values())
    print(
        f"{args.stacks} stacks, {args.layers} layers, {edges} edges, parallelism "
        f"{args.parallelism}, sleeps {args.min_s}-{args.max_s}s (seed {args.seed})"
    )
    print(f"lower bound {bound:.2f}s (critical path {critical:.2f}s, work/parallelism {work:.2f}s)")
    for label, (_, wall, cpu) in zip(("first run", "second run"), timed, strict=True):
        print(
            f"{label + ':':12} wall {wall:6.2f}s   wall / lower bound = {wall / bound:.3f} "
            f"(target <= 1.05)   tfrun CPU per stack = {cpu / args.stacks * 1000:.2f} ms "
            "(target <= 2 ms)"
        )
    print("(the second run orders ready stacks by the durations the first one recorded)")
    for terminal in (False, True):
        seconds = summary_time(10_000, terminal=terminal)
        where = "a terminal (styled)" if terminal else "a log (plain)"
        print(f"summary table of 10,000 stacks to {where}: {seconds:.2f}s (target < 0.3 s)")
    return 0


def summary_time(count: int, *, terminal: bool) -> float:
    """The end-of-run table for `count` stacks, half with changes, printed to /dev/null."""
    from rich.console import Console

    from tfrun import ui

    results = {
        f"env{i % 20}-eu-west-1/stack{i}": Result.succeeded(has_changes=i % 2 == 0, exit_code=0)
        for i in range(count)
    }
    report = RunReport("plan", results, run_dir=Path("/tmp/runs"), duration_s=60.0)
    display = ui.RunDisplay(list(results), "plan", False, Path("/tmp/runs"))
    err = ui._err
    with open(os.devnull, "w") as devnull:
        console = Console(file=devnull, force_terminal=terminal, highlight=False, soft_wrap=True)
        ui._err = lambda: console  # type: ignore[assignment]
        try:
            began = time.perf_counter()
            display.summary(report)
            return time.perf_counter() - began
        finally:
            ui._err = err  # type: ignore[assignment]


def timed_run(
    stacks: list[Stack], deps: dict[str, set[str]], options: runner.RunOptions, display: bool
) -> tuple[RunReport, float, float]:
    """One run: its report, wall time, and tfrun's own CPU time (children excluded)."""
    stdout = sys.stdout
    if display:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - restored below
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    try:
        report = runner.run(stacks, deps, "apply", [], options)
    finally:
        wall = time.monotonic() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        if display:
            sys.stdout.close()
            sys.stdout = stdout
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return report, wall, cpu


if __name__ == "__main__":
    sys.exit(main())
