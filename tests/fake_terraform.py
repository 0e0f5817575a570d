"""A stand-in for terraform in scheduler tests: it does what a stack's `fake.json` says and
records what happened to it.

Per-stack behaviour, from `fake.json` in the working directory (all optional):

    {"sleep": 0.2,                        every command sleeps this long (seconds)
     "plan": {"sleep": 1, "exit": 1,      per-command overrides
              "fail_first": 2,            the first N runs of this command fail...
              "message": "Rate exceeded"},  ...printing this (default: a permanent error)
     "changes": {"add": 1, "change": 0, "destroy": 0, "outputs": ["vpc_id"],
                 "drift": ["aws_vpc.main"]},  resources changed outside terraform
     "changes_again": {"add": 2},         the changes of every plan after the first
     "on_sigint": "exit" | "ignore",      default exit, after "sigint_delay" seconds
     "on_sigterm": "exit" | "ignore",     default exit
     "die_by": "SIGSEGV"}                 after the sleep, die by this signal (a crash)

Every start, signal and exit is appended as a JSON line to $FAKE_TF_RECORD with the pid, the
working directory, the arguments and time.monotonic() (one clock for all processes).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # run as terraform, this script imports nothing of tfrun
    from tfrun.report import Event
    from tfrun.terraform import Terraform

CONFIG = "fake.json"
QUICK = ("init", "show")


class _Interrupted(Exception):
    pass


def _record(event: str, **fields: Any) -> None:
    path = os.environ.get("FAKE_TF_RECORD")
    if not path:
        return
    line = json.dumps(
        {
            "event": event,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "args": sys.argv[1:],
            "t": time.monotonic(),
            **fields,
        }
    )
    # One write of a short line with O_APPEND: records from concurrent fakes never mix.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _config() -> dict[str, Any]:
    try:
        loaded = json.loads(Path(CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _plan_json(changes: dict[str, Any]) -> dict[str, Any]:
    resources = []
    for action, count in (
        ("create", changes.get("add", 0)),
        ("update", changes.get("change", 0)),
        ("delete", changes.get("destroy", 0)),
    ):
        resources += [
            {"address": f"terraform_data.{action}{i}", "change": {"actions": [action]}}
            for i in range(count)
        ]
    resources.append({"address": "data.x.y", "change": {"actions": ["read"]}})
    outputs = {name: {"actions": ["update"]} for name in changes.get("outputs", [])}
    outputs["unchanged"] = {"actions": ["no-op"]}
    # A stack that has been applied before: its state has a resource.
    prior = {"values": {"root_module": {"resources": [{"address": "terraform_data.old"}]}}}
    drifted = [
        {"address": address, "change": {"actions": ["update"]}}
        for address in changes.get("drift", [])
    ]
    return {
        "format_version": "1.2",
        "resource_drift": drifted,
        "resource_changes": resources,
        "output_changes": outputs,
        "prior_state": prior,
    }


def main(argv: list[str]) -> int:
    config = _config()
    command = argv[0] if argv else ""
    # A stack's "sleep" is its main command's; init and show are quick unless told otherwise.
    inherited = {k: v for k, v in config.items() if k != "sleep" or command not in QUICK}
    settings = {**inherited, **config.get(command, {})}
    _record("start")

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        _record("signal", signal=name)
        key = "on_sigint" if signum == signal.SIGINT else "on_sigterm"
        if settings.get(key, "exit") == "exit":
            raise _Interrupted(name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if "-json" not in argv:  # machine output is the JSON alone, as terraform's is
        # Its flags, not their values: terraform never echoes a variable's value either.
        flags = [arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("-")]
        print(f"fake terraform {' '.join([command, *flags])}", flush=True)
    try:
        deadline = time.monotonic() + float(settings.get("sleep", 0))
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
    except _Interrupted:
        # Terraform finishes what it is doing and releases the state lock before exiting.
        time.sleep(float(settings.get("sigint_delay", 0.1)))
        print("Interrupt received. Gracefully shutting down...", flush=True)
        _record("exit", code=1, interrupted=True)
        return 1
    if "die_by" in settings:  # a crash: the process ends by that signal, nothing recorded
        signal.signal(signal.Signals[settings["die_by"]], signal.SIG_DFL)
        os.kill(os.getpid(), signal.Signals[settings["die_by"]])
    code = _outcome(command, argv, settings, config)
    _record("exit", code=code)
    return code


def _outcome(
    command: str, argv: list[str], settings: dict[str, Any], config: dict[str, Any]
) -> int:
    fail_first = int(settings.get("fail_first", 0))
    if fail_first:
        counter = Path(f".fake_count_{command}")
        runs = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(runs))
        if runs <= fail_first:
            message = settings.get("message", "Error: Unsupported argument")
            print(f"\nError: {message}\n", file=sys.stderr, flush=True)
            return 1
    changes = config.get("changes", {})
    if command == "plan":
        counter = Path(".fake_count_plans")
        plans = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(plans))
        if plans > 1 and "changes_again" in config:
            changes = config["changes_again"]
        for arg in argv:
            if arg.startswith("-out="):
                # The plan it saves is what `show -json` of that file tells.
                saved = {"fake plan": changes}
                Path(arg.removeprefix("-out=")).write_text(json.dumps(saved), encoding="utf-8")
        has_changes = any(changes.get(k) for k in ("add", "change", "destroy", "outputs"))
        print("Plan: changes" if has_changes else "No changes.", flush=True)
        default = 2 if has_changes and "-detailed-exitcode" in argv else 0
        return int(settings.get("exit", default))
    if command == "show" and "-json" in argv:
        with suppress(OSError, ValueError, KeyError, TypeError):
            changes = json.loads(Path(argv[-1]).read_text(encoding="utf-8"))["fake plan"]
        print(json.dumps(_plan_json(changes)), flush=True)
        return int(settings.get("exit", 0))
    return int(settings.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


@dataclass
class Recorder:
    """A sink that keeps a run's events."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)


def write_shim(bin_dir: Path) -> Path:
    """An executable `terraform` in `bin_dir` that is this fake."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "terraform"
    # -S: no site-packages to scan, so each fake starts in milliseconds.
    runs_fake = f"import runpy\nrunpy.run_path({__file__!r}, run_name='__main__')\n"
    shim.write_text(f"#!{sys.executable} -S\n{runs_fake}", encoding="utf-8")
    shim.chmod(0o755)
    return shim


def toolchain(binary: Path | str, cache_dir: Path) -> Terraform:
    """What a run of the fake terraform runs with: no sandbox, its own plugin cache."""
    from tfrun import process
    from tfrun.terraform import Terraform

    env = {**os.environ, "TF_PLUGIN_CACHE_DIR": str(cache_dir), "TF_IN_AUTOMATION": "1"}
    return Terraform(process.resolve_executable(str(binary)), env, None, cache_dir)


def patch_plumbing(cache_dir: Path, setattr_: Any = setattr) -> None:
    """Replace tfrun.terraform's generation and init bookkeeping with a marker file, so
    scheduler tests depend only on the runner (`setattr_`: pytest's monkeypatch.setattr)."""
    from tfrun import terraform
    from tfrun.discovery import Repository, Stack

    def marker(stack: Stack) -> Path:
        return stack.path / ".terraform" / "fake-init"

    def prepare(
        repo: Repository, stack: Stack, chain: Terraform, files: object = None
    ) -> terraform.Prepared:
        return terraform.Prepared(stack, chain.binary, (), init_needed=not marker(stack).exists())

    def mark_initialised(prepared: terraform.Prepared) -> None:
        marker(prepared.stack).parent.mkdir(exist_ok=True)
        marker(prepared.stack).touch()

    def resolve(
        repo: Repository, binary_name: str | None = None, base: Mapping[str, str] = os.environ
    ) -> Terraform:
        return toolchain(binary_name or "terraform", cache_dir)

    setattr_(terraform, "prepare", prepare)
    setattr_(terraform, "mark_initialised", mark_initialised)
    setattr_(terraform, "resolve", resolve)


STACK_REL = "staging-eu-west-1/network"
PROD_REL = "prod-eu-west-1/network"


class FakeRepo:
    """A live root with staging and prod stacks whose terraform is this fake."""

    def __init__(self, tmp_path: Path, files: Mapping[str, str] | None = None) -> None:
        from helpers import root_hcl, write_tree

        self.live = tmp_path / "live"
        self.record = tmp_path / "record.jsonl"
        self.shim = write_shim(tmp_path / "bin")
        self.env = {
            "FAKE_TF_RECORD": str(self.record),
            "TFRUN_TERRAFORM": str(self.shim),
            "TF_PLUGIN_CACHE_DIR": str(tmp_path / "plugins"),
        }
        write_tree(
            self.live,
            {
                "tfrun.hcl": root_hcl(),
                f"{STACK_REL}/main.tf": 'output "vpc_id" { value = "vpc-1" }\n',
                f"{PROD_REL}/main.tf": 'output "vpc_id" { value = "vpc-2" }\n',
                **(files or {}),
            },
        )

    def fake(self, rel: str, settings: dict[str, Any]) -> None:
        (self.live / rel / "fake.json").write_text(json.dumps(settings), encoding="utf-8")

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [line for line in lines if event is None or line["event"] == event]

    def commands(self) -> list[str]:
        return [r["args"][0] for r in self.records("start")]
