"""tfrun's whole-repository commands on a 10,000-stack repository, this checkout against
another (before and after a change, paired in one run):

    python bench/repository.py --against DIR [--stacks 10000] [--repeat 3] [--keep DIR]

Generates the repository of bench/discovery.py, makes it a git repository of two commits (the
second changes one shared module), and copies it once per tfrun (their caches must not meet).
Then, for each command, one untimed run per tfrun (caches written, bytecode compiled) and
`--repeat` timed runs, alternating between the two, as a user waits for them (interpreter
start-up and imports included), nothing changed in between:

* `graph --format json`
* `affected --base HEAD~1 --head HEAD --format json`
* `check --format json`
* `ci gitlab --base HEAD~1 --head HEAD`

It prints each median with its min-max, the ratio after/before and the issue's target. The two
tfruns must print the same (compared after the first line of check's JSON, whose findings
list may grow with new rules).

`--against` is another checkout of tfrun, for example one made with
`git worktree add /tmp/tfrun-before <commit>`; `--source` this side's (default: this one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from discovery import MAIN_ROOT, generate

CHANGE = ["--base", "HEAD~1", "--head", "HEAD"]
# The command line, and the target for a warm run, in seconds.
COMMANDS = {
    "graph": (["graph", "{live}", "--format", "json"], 0.5),
    "affected": (["affected", "{live}", *CHANGE, "--format", "json"], 0.6),
    "check": (["check", "{live}", "--format", "json"], 2.0),
    "ci gitlab": (["ci", "gitlab", "{live}", *CHANGE], 1.0),
}
GIT = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@tfrun.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@tfrun.invalid",
}


def _env(source: Path, pycache: Path) -> dict[str, str]:
    env = {**os.environ, **GIT, "PYTHONPATH": str(source), "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed tfrun has its bytecode
    return env


# `python -m tfrun` from PYTHONPATH: an editable install's finder would otherwise answer
# `import tfrun` with its own checkout, whatever PYTHONPATH says.
LAUNCH = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "sys.argv[0] = 'tfrun'; runpy.run_module('tfrun', run_name='__main__', alter_sys=True)"
)


def _run(argv: list[str], live: Path, env: dict[str, str]) -> tuple[float, str]:
    args = [a.format(live=live) for a in argv]
    start = time.perf_counter()
    done = subprocess.run(
        # Not from this checkout's folder: `python -c` would import its tfrun first.
        [sys.executable, "-c", LAUNCH, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=live,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # check exits 1 with findings
        raise SystemExit(f"tfrun {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout


def _repository(base: Path, stacks: int) -> Path:
    live = generate(base, stacks)
    env = {**os.environ, **GIT, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gc.auto"}
    env["GIT_CONFIG_VALUE_0"] = "0"  # no packing behind the copy's back
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "one"]):
        subprocess.run(["git", *argv], cwd=base, env=env, check=True, capture_output=True)
    module = next((base / "modules").iterdir())
    main = next(module.glob("*.tf"))
    main.write_text(main.read_text() + "\n# a change\n", encoding="utf-8")
    for argv in (["add", "-A"], ["commit", "-qm", "two"]):
        subprocess.run(["git", *argv], cwd=base, env=env, check=True, capture_output=True)
    return live


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="the other tfrun checkout")
    parser.add_argument(
        "--source", type=Path, default=MAIN_ROOT, help="this side's checkout (default: this one)"
    )
    parser.add_argument("--stacks", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate here and leave it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tfrun-bench-"))
    try:
        shutil.rmtree(work, ignore_errors=True)
        live = _repository(work / "after", args.stacks)
        subprocess.run(["git", "clone", "-q", "after", "before"], cwd=work, check=True)
        sides = {
            "before": (work / "before" / live.name, _env(args.against.resolve(), work / "pyc-b")),
            "after": (live, _env(args.source.resolve(), work / "pyc-a")),
        }
        time.sleep(2.5)  # past the caches' racy window, as a checkout of a moment ago is
        print(f"{args.stacks} stacks; medians of {args.repeat} warm runs (min-max)")
        for name, (argv, target) in COMMANDS.items():
            outputs = {side: _run(argv, root, env)[1] for side, (root, env) in sides.items()}
            times: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.repeat):
                for side, (root, env) in sides.items():
                    elapsed, out = _run(argv, root, env)
                    times[side].append(elapsed)
                    assert out == outputs[side], f"{name}: a warm run said something else"
            same = _comparable(name, outputs["before"]) == _comparable(name, outputs["after"])
            before, after = (statistics.median(times[s]) for s in ("before", "after"))
            print(
                f"{name:10} before {before:5.2f} s ({min(times['before']):.2f}-"
                f"{max(times['before']):.2f})  after {after:5.2f} s ({min(times['after']):.2f}-"
                f"{max(times['after']):.2f})  after/before {after / before:4.2f}  "
                f"after/target {after / target:4.2f} (target {target} s)"
                + ("" if same else "  OUTPUTS DIFFER")
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _comparable(name: str, out: str) -> str:
    """The two checkouts sit in different folders: paths are compared without them."""
    text = out.replace("/before/", "/SIDE/").replace("/after/", "/SIDE/")
    return text.split("\n", 1)[1] if name == "check" else text


if __name__ == "__main__":
    raise SystemExit(main())
