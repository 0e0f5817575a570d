"""The terraform work of one stack in a run, as a task for the scheduler:

    stack lock → generated files → init (when needed, under the plugin-cache lock)
    → the command → for plan, `show -json` for the counts → one Result

Every byte terraform writes goes to the stack's log file in the run directory; tfrun adds a
`$ command` line before each command and a `# exit` line after it, so the log reads alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfrun import process, recreate, retry, terraform
from tfrun.discovery import Repository, Stack
from tfrun.errors import RefusedError, TfrunError
from tfrun.locks import LockTimeout, PluginCacheLock, init_may_write_cache, stack_lock
from tfrun.process import Launch, ProcessGroups
from tfrun.report import Changes, Result
from tfrun.runner import Stopped, TaskContext

PLAN_OK = frozenset({0, 2})  # with -detailed-exitcode: 2 is "succeeded, with changes"
OK = frozenset({0})
_TAKES_INPUT = frozenset({"init", "plan", "apply", "destroy", "import", "refresh"})
_TAKES_NO_COLOR = _TAKES_INPUT | {"validate", "output", "show"}
_NEEDS_APPROVAL = frozenset({"apply", "destroy"})
# Only the end of a failed attempt is searched for a transient cause: that is where terraform
# prints its errors, and a plan's output can be megabytes.
_TAIL_BYTES = 64 * 1024
_ERROR_LINE = re.compile(r"^[│╷╵|\s]*Error: (.+)$", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SECRET_NAME = re.compile(r"(?i)(secret|password|passwd|token|private|credential|_key\b|^key$)")


@dataclass(frozen=True)
class Job:
    """What every stack of one run shares."""

    repo: Repository
    command: str
    tf_args: tuple[str, ...]
    binary: str
    env: Mapping[str, str]
    run_dir: Path
    lock_timeout: float | None
    color: bool
    grace_s: float
    groups: ProcessGroups
    cache_dir: Path
    cache: PluginCacheLock

    def file(self, stack: Stack, suffix: str) -> Path:
        return self.run_dir / f"{stack.rel}{suffix}"


def redact(argv: Sequence[str]) -> str:
    """The command as logged: `-var` values whose name looks secret are hidden."""
    shown = []
    for index, arg in enumerate(argv):
        value_of_var = index > 0 and argv[index - 1] == "-var"
        body = (
            arg if value_of_var else arg.removeprefix("-var=") if arg.startswith("-var=") else None
        )
        if body is not None and "=" in body and _SECRET_NAME.search(body.split("=", 1)[0]):
            name = body.split("=", 1)[0]
            arg = f"{name}=***" if value_of_var else f"-var={name}=***"
        shown.append(arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else json.dumps(arg))
    return " ".join(shown)


def _user_plan_file(stack: Stack, tf_args: Sequence[str]) -> Path | None:
    for index, arg in enumerate(tf_args):
        if arg.startswith("-out="):
            return stack.path / arg.removeprefix("-out=")
        if arg == "-out" and index + 1 < len(tf_args):
            return stack.path / tf_args[index + 1]
    return None


def command_argv(job: Job, stack: Stack, plan_file: Path | None) -> list[str]:
    """The stack's main command, with what a run without a terminal needs added."""
    command, user = job.command, job.tf_args
    argv = [job.binary, command]
    if command in _TAKES_INPUT and not any(a.startswith("-input") for a in user):
        argv.append("-input=false")
    if command in _NEEDS_APPROVAL and "-auto-approve" not in user:
        argv.append("-auto-approve")  # the CLI asked once for the whole run
    if command == "plan":
        argv.append("-detailed-exitcode")
        if plan_file is not None and _user_plan_file(stack, user) is None:
            argv.append(f"-out={plan_file}")
    if not job.color and command in _TAKES_NO_COLOR and "-no-color" not in user:
        argv.append("-no-color")
    return argv + list(user)


def _tail(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(offset, size - _TAIL_BYTES))
        return handle.read().decode("utf-8", "replace")


def _first_error(text: str) -> str | None:
    match = _ERROR_LINE.search(_ANSI.sub("", text))
    return match.group(1).strip() if match else None


class _StackRun:
    def __init__(self, stack: Stack, context: TaskContext, job: Job) -> None:
        self.stack = stack
        self.context = context
        self.job = job
        self.log = job.file(stack, ".log")
        self.policy = retry.RetryPolicy.from_config(stack.config.retry)
        self.phase = "start"
        self.attempts = 0
        self.error: str | None = None  # the first "Error:" line of the last failed command
        self.note = ""  # for the summary: resources the plan recreates that look renamed

    def write_log(self, line: str) -> None:
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")

    async def terraform(
        self, phase: str, argv: Sequence[str], ok: frozenset[int], stdout: Path | None = None
    ) -> int:
        """Run one terraform command, again after a transient failure; its exit code."""
        self.phase = phase
        for attempt in range(1, self.policy.attempts + 1):
            if self.context.stop.requested:
                raise Stopped
            self.attempts = attempt
            note = f"  (attempt {attempt} of {self.policy.attempts})" if attempt > 1 else ""
            self.write_log(f"$ {redact(argv)}{note}")
            offset = self.log.stat().st_size
            self.context.progress(phase if attempt == 1 else f"{phase} (attempt {attempt})")
            exited = await process.run_in_group(
                Launch(tuple(argv), self.stack.path, self.job.env, self.log, stdout),
                self.job.groups,
                grace_s=self.job.grace_s,
            )
            code = exited.returncode
            self.write_log(f"# exit {code} after {exited.duration_s:.1f}s")
            if code in ok:
                return code
            if exited.signalled or self.context.stop.requested:
                raise Stopped
            output = _tail(self.log, offset)
            self.error = _first_error(output)
            cause = retry.transient_cause(output)
            if cause is None or attempt == self.policy.attempts:
                return code
            delay = self.policy.delay(attempt)
            message = (
                f"terraform {phase} failed with {cause}; retrying in {delay:.1f}s "
                f"(attempt {attempt + 1} of {self.policy.attempts})"
            )
            self.write_log(f"tfrun: {message}")
            self.context.notice(message)
            self.context.progress(f"{phase}: retry in {delay:.0f}s")
            if not await self.context.stop.sleep(delay):
                raise Stopped
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def failed(self, phase: str, code: int) -> Result:
        detail = f": {self.error}" if self.error else ""
        return Result.failed(
            f"terraform {phase} failed (exit {code}){detail}",
            exit_code=code,
            attempts=self.attempts,
            log=self.log,
        )

    async def init(self, argv: Sequence[str], *, upgrade: bool = False) -> int:
        exclusive = upgrade or init_may_write_cache(self.stack.path, self.job.cache_dir)

        def waiting() -> None:
            self.context.progress("init: waiting for the provider cache")

        async with self.job.cache.hold(
            exclusive=exclusive, stop=self.context.stop, waiting=waiting
        ):
            return await self.terraform("init", argv, OK)

    async def run(self) -> Result:
        job, stack = self.job, self.stack
        self.phase = "generate"
        prepared = terraform.prepare(job.repo, stack, job.binary, job.env)
        if prepared.init_needed and job.command != "init":
            argv = terraform.init_argv(job.binary, job.repo.root, stack, job.env)
            if not job.color:
                argv.append("-no-color")
            code = await self.init(argv)
            if code != 0:
                return self.failed("init", code)
            terraform.mark_initialised(prepared)
        if self.context.stop.requested:
            raise Stopped
        plan_file = None
        if job.command == "plan":
            plan_file = _user_plan_file(stack, job.tf_args) or job.file(stack, ".tfplan")
        argv = command_argv(job, stack, plan_file)
        if job.command == "init":
            code = await self.init(argv, upgrade="-upgrade" in job.tf_args)
        else:
            code = await self.terraform(job.command, argv, PLAN_OK if job.command == "plan" else OK)
        if code not in (PLAN_OK if job.command == "plan" else OK):
            return self.failed(job.command, code)
        if job.command == "init":
            terraform.mark_initialised(prepared)
        attempts = self.attempts
        if job.command != "plan" or plan_file is None:
            return Result.succeeded(exit_code=code, attempts=attempts, log=self.log)
        changes: Changes = Changes()
        outputs: tuple[str, ...] = ()
        if code == 2:
            changes, outputs = await self.read_plan(plan_file)
        upstream = tuple(
            dependency
            for dependency in self.context.dependencies
            if (before := self.context.results.get(dependency)) is not None
            and (before.output_changes or before.provisional)
        )
        return Result.succeeded(
            reason=self.note,
            exit_code=code,
            changes=changes,
            has_changes=code == 2,
            output_changes=outputs,
            provisional=upstream,
            attempts=attempts,
            log=self.log,
            plan_file=plan_file,
        )

    async def read_plan(self, plan_file: Path) -> tuple[Changes, tuple[str, ...]]:
        if self.context.stop.requested:
            raise Stopped
        plan_json = self.job.file(self.stack, ".plan.json")
        argv = [self.job.binary, "show", "-json", str(plan_file)]
        code = await self.terraform("show", argv, OK, stdout=plan_json)
        if code != 0:
            raise TfrunError(
                f"terraform show -json could not read the saved plan (exit {code}); see {self.log}"
            )
        try:
            plan: Any = json.loads(plan_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TfrunError(
                f"the JSON of the saved plan is unreadable ({exc}): {plan_json}"
            ) from None
        renames = recreate.detect(plan)
        self.note = recreate.note(renames) if renames else ""
        return Changes.from_plan(plan if isinstance(plan, dict) else {})


async def run_stack(stack: Stack, context: TaskContext, job: Job) -> Result:
    """The scheduler's task for one stack: whatever happens, one Result."""
    run = _StackRun(stack, context, job)
    run.log.parent.mkdir(parents=True, exist_ok=True)

    def waiting(holder: str) -> None:
        context.progress("waiting for the stack lock")
        context.notice(f"waiting for {holder} to finish in this stack")

    try:
        async with stack_lock(
            stack,
            command=job.command,
            timeout=job.lock_timeout,
            stop=context.stop,
            waiting=waiting,
        ):
            result = await run.run()
    except Stopped:
        result = Result.interrupted(
            f"{run.phase} stopped: {context.stop.reason}", attempts=run.attempts, log=run.log
        )
    except LockTimeout as exc:
        result = Result.failed(str(exc), log=run.log)
    except RefusedError as exc:
        result = Result.refused(str(exc), log=run.log)
    except TfrunError as exc:
        result = Result.failed(str(exc), attempts=run.attempts, log=run.log)
    except OSError as exc:
        result = Result.failed(f"could not run terraform here: {exc}", log=run.log)
    if not result.ok:
        # The log alone tells the whole story, even when terraform never ran.
        run.write_log(f"tfrun: {result.status}: {result.reason}")
    return result
