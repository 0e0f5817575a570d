"""The terraform work of one stack, the only code that runs terraform in a stack:

    stack lock → generated files → init (when needed, under the plugin-cache lock, retried)
    → before-hooks → the command → for a saved plan, `show -json` for the counts
    → after-hooks → one Result

Two modes of the same code. In the background (many stacks, or a report wanted) every byte
terraform writes goes to the stack's log file in the run directory; tfrun adds a `$ command`
line before each command and a `# exit` line after it, so the log reads alone. In the
foreground (one stack a person named) terraform keeps the terminal for its command: it may
prompt, it colours its output, and Ctrl-C reaches it directly; init's output is shown on
stderr and kept in the log.

Long on purpose: this is the one path every terraform command takes in a stack, read top to
bottom in the order it runs; the parts that need no process are elsewhere (run/provisional.py,
run/logs.py, run/locks.py, terraform.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from tfrun import (
    configured,
    durations,
    planned,
    process,
    recreate,
    retry,
    safety,
    terraform,
    tfargs,
)
from tfrun.configured import Hook
from tfrun.discovery import Repository, Stack
from tfrun.errors import RefusedError, TfrunError
from tfrun.files import PRIVATE_FILE_MODE, make_private_dir, open_private
from tfrun.generate import GeneratedFile
from tfrun.process import Launch, ProcessGroups
from tfrun.report import Changes, Result, Status
from tfrun.run import hooks, logs, provisional, review
from tfrun.run.locks import (
    LockTimeout,
    PluginCacheLock,
    init_may_write_cache,
    note_holder,
    stack_lock,
    stack_lock_path,
)
from tfrun.run.scheduler import Stopped, TaskContext
from tfrun.terraform import Prepared

# terraform's words for a remote state that does not exist, and for a saved plan made before
# the state changed.
MISSING_STATE = "Unable to find remote state"
STALE_PLAN = "Saved plan is stale"
# Where a background `output` keeps terraform's stdout; absent when the stack has no state.
OUTPUT_SUFFIX = ".output"
PLAN_OK = frozenset({0, 2})  # with -detailed-exitcode: 2 is "succeeded, with changes"
OK = frozenset({0})

# Called after init, before the command, with the stack: raises RefusedError when the
# command must not run (a saved plan that could only be read once the stack was initialised).
AfterInit = Callable[[Stack], None]
# Asks the person at the terminal whether to apply a plan that changed after approval.
AskAgain = Callable[[Stack, str], Awaitable[bool]]
# Told the command line of a foreground command just before it runs (tfrun/express.py).
Launching = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class Job:
    """What every stack of one run shares."""

    repo: Repository
    command: str
    tf_args: tuple[str, ...]
    terraform: terraform.Terraform
    run_dir: Path
    lock_timeout: float | None
    grace_s: float
    groups: ProcessGroups
    cache: PluginCacheLock
    auto_approve: bool
    detailed_exitcode: bool
    color: bool  # background mode: keep terraform's colours (the log is shown on a terminal)
    foreground: bool = False
    after_init: AfterInit | None = None
    # Each stack's generated files, rendered (and checked) before the run; else rendered here.
    generated: Mapping[str, Sequence[GeneratedFile]] | None = None
    # Each terraform command's limit, in seconds; None: no limit.
    timeout_s: float | None = None
    destroy_plan: bool = False  # plan -destroy: upstream output changes do not apply
    # A reviewed apply: each stack's approved plan (its result in the plan phase), applied
    # as it is or planned again (run/review.py); None: apply as the person's command says.
    reviewed: Mapping[str, Result] | None = None
    ask_again: AskAgain | None = None  # None: no terminal to ask on
    approved_in_advance: bool = False  # --yes: a plan that changed is applied all the same
    # Plans of stacks outside this run, made by other CI jobs (--upstream-plans), by stack.
    upstream_plans: Mapping[str, Result] = field(default_factory=dict)
    launching: Launching | None = None

    def file(self, stack: Stack, suffix: str) -> Path:
        return self.run_dir / f"{stack.rel}{suffix}"


class Killed(Exception):
    """terraform ended by a signal it did not get from tfrun (a crash, the OOM killer)."""

    def __init__(self, phase: str, signal: int) -> None:
        self.signal = signal
        name = _signal_name(signal)
        super().__init__(f"terraform {phase} was killed by {name} (exit {128 + signal})")


class TimedOut(Exception):
    pass


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def review_settled(approved: Result) -> Result | None:
    """A reviewed apply's result for a stack that has nothing to apply, without terraform:
    its plan failed (or was skipped), or it changes nothing and reads nothing that changed."""
    if approved.status is Status.WAITING:
        return None
    if not approved.ok:
        return replace(approved, reason=f"its plan {approved.status}: {approved.reason}")
    if not approved.has_changes and not approved.provisional:
        return Result.succeeded(reason="no changes: not applied", log=approved.log)
    return None


def _has_state(pulled: Path) -> bool:
    """Whether `state pull` found a state: with none, a local backend prints nothing and the
    S3 backend an empty state of serial 0 with no lineage (every written state has one)."""
    try:
        state = json.loads(pulled.read_bytes() or b"null")
    except ValueError:
        return True  # not ours to judge: terraform's answer stands
    return isinstance(state, dict) and bool(state.get("lineage"))


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
        self.lock_fd: int | None = None  # the stack lock, which each terraform inherits
        # Upstreams this plan reads as planned, not applied: {rel: what it read of each}.
        self.planned: dict[str, str] = {}
        # The reads pointed at planned outputs, and where in the log their plan began.
        self.overridden: tuple[tuple[str, ...], int] = ((), 0)
        # The plan the command writes or applies, as the hooks are told (TFRUN_PLAN_FILE).
        self.plan_file: Path | None = None

    def log_size(self) -> int:
        """Where the next command's output will start in the log (which may not exist yet)."""
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def write_log(self, line: str) -> None:
        with os.fdopen(open_private(self.log), "a", encoding="utf-8") as handle:
            handle.write(line.rstrip("\n") + "\n")

    async def terraform(
        self,
        phase: str,
        argv: Sequence[str],
        ok: frozenset[int],
        *,
        stdout: Path | None = None,
        terminal: bool = False,
    ) -> int:
        """Run one terraform command, again after a transient failure; its exit code.

        With the terminal, terraform's output is not seen by tfrun, so it runs once.
        """
        self.phase = phase
        attempts = 1 if terminal else self.policy.attempts
        echo = getattr(sys.stderr, "buffer", None) if self.job.foreground and not terminal else None
        for attempt in range(1, attempts + 1):
            if self.context.stop.requested:
                raise Stopped
            self.attempts = attempt
            note = f"  (attempt {attempt} of {attempts})" if attempt > 1 else ""
            self.write_log(f"$ {logs.redact(argv)}{note}")
            offset = self.log.stat().st_size
            self.context.progress(phase if attempt == 1 else f"{phase} (attempt {attempt})")
            launch = Launch(
                tuple(argv),
                self.stack.path,
                self.job.terraform.env,
                self.log,
                stdout,
                terminal=terminal,
                echo=echo,
                pass_fds=(self.lock_fd,) if self.lock_fd is not None else (),
                on_spawn=self.holding,
            )
            exited = await self.run_limited(f"terraform {phase}", launch)
            code = exited.returncode
            ended = f"killed by {exited.killed_by.name}" if exited.killed_by else f"exit {code}"
            self.write_log(f"# {ended} after {exited.duration_s:.1f}s")
            if code in ok:
                return code
            if exited.signalled or self.context.stop.requested:
                raise Stopped
            if exited.killed_by is not None:
                raise Killed(phase, exited.killed_by)
            if terminal:
                return code
            output = logs.tail(self.log, offset)
            self.error = logs.first_error(output)
            cause = retry.transient_cause(output)
            if cause is None or attempt == attempts:
                return code
            delay = self.policy.delay(attempt)
            message = (
                f"terraform {phase} failed with {cause}; retrying in {delay:.1f}s "
                f"(attempt {attempt + 1} of {attempts})"
            )
            self.write_log(f"tfrun: {message}")
            self.context.notice(message)
            self.context.progress(f"{phase}: retry in {delay:.0f}s")
            if not await self.context.stop.sleep(delay):
                raise Stopped
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    async def run_limited(self, what: str, launch: Launch) -> process.Exited:
        """One process, ended (gracefully first) when it outlives the job's timeout."""
        limit = self.job.timeout_s or self.stack.config.timeout_s
        with anyio.move_on_after(limit) as scope:
            return await process.run_in_group(launch, self.job.groups, grace_s=self.job.grace_s)
        assert scope.cancelled_caught and limit is not None
        self.write_log(f"tfrun: {what} timed out after {durations.show(limit)}; stopped")
        raise TimedOut(f"{what} timed out after {durations.show(limit)} (the time limit)")

    async def hook(self, hook: Hook, exit_code: int | None) -> str | None:
        """Run one hook in the stack's folder; None when it succeeded, else how it ended."""
        if self.context.stop.requested:
            raise Stopped
        job, stack = self.job, self.stack
        self.phase = hook.label
        env = hooks.environment(
            job.terraform.env,
            stack,
            job.command,
            hook,
            plan_file=self.plan_file,
            exit_code=exit_code,
        )
        argv = (hooks.program(hook, stack, env), *hook.argv[1:])
        self.write_log(f"$ {logs.redact(hook.argv)}  ({hook.label})")
        self.context.progress(hook.label)
        echo = getattr(sys.stderr, "buffer", None) if job.foreground else None
        launch = Launch(argv, stack.path, env, self.log, echo=echo)
        exited = await self.run_limited(f"the {hook.label}", launch)
        code = exited.returncode
        ended = f"killed by {exited.killed_by.name}" if exited.killed_by else f"exit {code}"
        self.write_log(f"# {ended} after {exited.duration_s:.1f}s")
        if exited.signalled or self.context.stop.requested:
            raise Stopped
        return None if code == 0 else ended

    async def before_hooks(self) -> Result | None:
        """The command's before-hooks, in order; the first that fails fails the stack."""
        for hook in configured.hooks(self.stack, self.job.command, "before"):
            ended = await self.hook(hook, None)
            if ended is not None:
                return Result.failed(
                    f"the {hook.label} failed ({ended}), so terraform {self.job.command} did "
                    f"not run; its output is in the log ({hook.origin})",
                    exit_code=1,
                    log=self.log,
                )
        return None

    async def after_hooks(self, result: Result) -> Result:
        """The command's after-hooks, in order: all of them when it succeeded, those with
        run_on_error when it did not. The first that fails fails the stack."""
        for hook in configured.hooks(self.stack, self.job.command, "after"):
            if not (result.ok or hook.run_on_error):
                continue
            # Whether tfrun added -detailed-exitcode (it does for a plan of many stacks, or
            # with a report) is not the hook's concern: a plan with changes succeeded, 0.
            ended = await self.hook(hook, 0 if result.ok else result.exit_code)
            if ended is None:
                continue
            failed = f"the {hook.label} failed ({ended}; {hook.origin})"
            if result.ok:
                return replace(
                    result,
                    status=Status.FAILED,
                    reason=f"{failed} after terraform {self.job.command} succeeded",
                    exit_code=1,
                )
            return replace(result, reason=f"{result.reason}; {failed} too")
        return result

    def holding(self, pid: int) -> None:
        """Say who holds the stack while this terraform runs: if tfrun dies, it still does."""
        since = time.strftime("%H:%M:%S")
        note_holder(
            stack_lock_path(self.stack),
            f"terraform {self.phase} (pid {pid}, started by tfrun pid {os.getpid()} at {since})",
        )

    def failed(self, phase: str, code: int) -> Result:
        detail = f": {self.error}" if self.error else ""
        return Result.failed(
            f"terraform {phase} failed (exit {code}){detail}",
            exit_code=code,
            attempts=self.attempts,
            log=self.log,
        )

    async def init(self, argv: Sequence[str], *, upgrade: bool = False, terminal: bool) -> int:
        exclusive = upgrade or init_may_write_cache(self.stack.path, self.job.terraform.cache_dir)

        def waiting() -> None:
            self.context.progress("init: waiting for the provider cache")

        async with self.job.cache.hold(
            exclusive=exclusive, stop=self.context.stop, waiting=waiting
        ):
            return await self.terraform("init", argv, OK, terminal=terminal)

    async def run(self) -> Result:
        job, stack = self.job, self.stack
        if job.reviewed is not None:
            settled = review_settled(job.reviewed[stack.rel])
            if settled is not None:
                return settled
        self.phase = "generate"
        files = None if job.generated is None else job.generated.get(stack.rel)
        prepared = terraform.prepare(job.repo, stack, job.terraform, files)
        switched = prepared.switch_notice
        if switched is not None:
            # The person switched between the sandbox and AWS; say so once, in the log too.
            self.write_log(f"tfrun: {switched}")
            self.context.notice(switched)
        choosing = job.command == "init" and tfargs.chooses_backend(job.tf_args)
        if prepared.moved_from is not None and not choosing:
            return Result.failed(
                f"the state of {stack.rel} moved from {prepared.moved_from} to "
                f"{terraform.state_location(stack)} since its last init; tfrun will not choose "
                f"for you: run 'tfrun init -migrate-state' in {stack.rel} to copy the state to "
                "the new place, or 'tfrun init -reconfigure' when it is there already",
                exit_code=1,
                log=self.log,
            )
        if prepared.init_needed and job.command != "init":
            if job.foreground and switched is None:
                self.context.notice("running terraform init (first run, or the backend changed)")
            argv = job.terraform.init_argv(reconfigure=prepared.reconfigure)
            if not job.color:
                argv.append("-no-color")
            argv += [argument for argument, _ in configured.extra_arguments(stack, "init")]
            code = await self.init(argv, terminal=False)
            if code != 0:
                return self.failed("init", code)
            terraform.mark_initialised(prepared)
        if self.context.stop.requested:
            raise Stopped
        if job.after_init is not None:
            job.after_init(stack)
        plan_file = None
        if job.command == "plan" and not job.foreground:
            user = tfargs.user_plan_file(job.tf_args)
            plan_file = stack.path / user if user else job.file(stack, ".tfplan")
        self.plan_file = plan_file or self.named_plan_file()
        refused = await self.before_hooks()
        if refused is not None:
            return refused
        return await self.after_hooks(await self.command(prepared, plan_file))

    def named_plan_file(self) -> Path | None:
        """The plan the command line names: a reviewed apply's approved plan, the plan file of
        `apply PLANFILE`, or a foreground plan's own -out."""
        job = self.job
        if job.reviewed is not None:
            return job.reviewed[self.stack.rel].plan_file
        named = tfargs.saved_plan(job.command, job.tf_args)
        if job.command == "plan":
            named = tfargs.user_plan_file(job.tf_args)
        return None if named is None else self.stack.path / named

    async def command(self, prepared: Prepared, plan_file: Path | None) -> Result:
        """The person's command in this stack (or a reviewed apply's saved plan)."""
        job, stack = self.job, self.stack
        if job.reviewed is not None:
            return await self.apply_reviewed(job.reviewed[stack.rel])
        line = tfargs.CommandLine(
            auto_approve=job.auto_approve,
            # In the background a plan always tells whether it has changes.
            detailed_exitcode=job.detailed_exitcode or not job.foreground,
            terminal=job.foreground,
            plan_file=None if plan_file is None else str(plan_file),
            configured=tuple(configured.arguments(stack, job.command, job.tf_args)),
        )
        argv = tfargs.command_argv(job.terraform.binary, job.command, job.tf_args, line)
        choosing = job.command == "init" and tfargs.chooses_backend(job.tf_args)
        if job.command == "init" and prepared.reconfigure and not choosing:
            argv.insert(2, "-reconfigure")
        ok = PLAN_OK if job.command == "plan" and line.detailed_exitcode else OK
        if job.command == "init":
            upgrade = tfargs.has_flag(job.tf_args, "upgrade")
            code = await self.init(argv, upgrade=upgrade, terminal=job.foreground)
        elif plan_file is not None and not job.destroy_plan:
            code = await self.plan_through_planned_outputs(argv, ok)
        elif job.command == "output" and not job.foreground:
            code = await self.output(argv)
        else:
            if job.foreground and job.launching is not None:
                job.launching(argv)
            code = await self.terraform(job.command, argv, ok, terminal=job.foreground)
        waited = self.waiting_for() if code not in ok and plan_file is not None else None
        if waited is not None:
            upstreams, why = waited
            return Result.waiting(
                f"waiting for {', '.join(upstreams)} to be applied: {why} "
                f"({self.error or f'exit {code}'})",
                provisional=upstreams,
                planned_outputs=tuple(self.planned.values()),
                has_changes=True,
                exit_code=code,
                attempts=self.attempts,
                log=self.log,
            )
        if code not in ok:
            return self.failed(job.command, code)
        if job.command == "init":
            terraform.mark_initialised(prepared)
        if plan_file is None:
            return Result.succeeded(
                exit_code=code,
                has_changes=code == 2,
                changes=self.applied(),
                attempts=self.attempts,
                log=self.log,
            )
        return await self.plan_result(code, plan_file)

    async def apply_reviewed(self, approved: Result) -> Result:
        """Apply the plan the person approved; or, when what this stack reads changed since
        (or its own state did), plan again and apply that, asking again if it does not do
        what was approved."""
        job = self.job
        assert job.reviewed is not None
        reason = review.replan_reason(
            approved, self.context.dependencies, job.reviewed, self.context.results
        )
        plan_file, note = approved.plan_file, ""
        while True:
            if reason is not None:
                again = await self.plan_again(approved, reason)
                if isinstance(again, Result):
                    return again
                plan_file, note = again
                self.plan_file = plan_file
            assert plan_file is not None
            no_color = [] if job.color else ["-no-color"]
            offset = self.log_size()
            added = configured.arguments(self.stack, "apply", [str(plan_file)])
            argv = [job.terraform.binary, "apply", "-input=false", *no_color, *added]
            argv.append(str(plan_file))
            code = await self.terraform("apply", argv, OK)
            if code == 0:
                break
            if reason is not None or STALE_PLAN not in logs.tail(self.log, offset):
                return self.failed("apply", code)
            # Another run changed the state between the plan and now (tfrun holds a stack
            # only while terraform works in it).
            reason = "its state changed since it was planned"
        return Result.succeeded(
            reason=note,
            exit_code=code,
            changes=self.applied(),
            output_changes=approved.output_changes,
            attempts=self.attempts,
            log=self.log,
        )

    async def plan_again(self, approved: Result, reason: str) -> Result | tuple[Path, str]:
        """A new plan, checked against the approved one: (its file, a note for the summary),
        or the stack's result when there is nothing to apply or it may not be applied."""
        job, stack = self.job, self.stack
        plan_file = job.file(stack, ".tfplan")
        no_color = [] if job.color else ["-no-color"]
        argv = [job.terraform.binary, "plan", "-input=false", "-detailed-exitcode"]
        argv += [f"-out={plan_file}", *no_color]
        argv += [*configured.arguments(stack, "plan", job.tf_args), *job.tf_args]
        code = await self.terraform("plan", argv, PLAN_OK)
        if code not in PLAN_OK:
            return self.failed(f"plan (again: {reason})", code)
        if code == 0:
            return Result.succeeded(reason=f"no changes ({reason}): not applied", log=self.log)
        await self.read_plan(plan_file)
        new = review.load_plan(job.file(stack, ".plan.json"))
        old = review.shown_plan(approved)
        note = f"planned again: {reason}"
        refusal = safety.refuse_removal(stack, safety.summarise_plan(new), os.environ)
        if refusal is not None:
            return Result.refused(refusal, log=self.log)
        changed = review.differences(old, new)
        if changed and not job.approved_in_advance:
            listing = "; ".join(changed)
            asked = f"{stack.rel}: the plan changed after approval ({reason}): {listing}."
            if job.ask_again is None or not await job.ask_again(
                stack, f"{asked}\nApply the new plan? Type 'yes' to go on:"
            ):
                return Result.refused(
                    f"plan changed after approval ({reason}): {listing}", log=self.log
                )
            note += "; its new plan was approved again"
        return plan_file, note

    async def output(self, argv: Sequence[str]) -> int:
        """`output` over many stacks: each one's stdout kept apart (OUTPUT_SUFFIX) for the
        run to print together; a stack with no state yet has none (`null`), not `{}`."""
        kept = self.job.file(self.stack, OUTPUT_SUFFIX)
        code = await self.terraform("output", argv, OK, stdout=kept)
        if code != 0 or kept.read_text(encoding="utf-8").strip() != "{}":
            return code
        pulled = self.job.file(self.stack, ".state")
        pull = [self.job.terraform.binary, "state", "pull"]
        if await self.terraform("state pull", pull, OK, stdout=pulled) == 0:
            if not _has_state(pulled):
                kept.unlink()
                self.context.notice("no state yet: its outputs are null")
            pulled.unlink()
        return code

    def waiting_for(self) -> tuple[tuple[str, ...], str] | None:
        """When a plan failed because what it reads is planned but not applied: those
        upstreams, and why. It failed on what it read as planned (a placeholder, or an
        expression of such a read); or on a state that does not exist yet, of an upstream
        this run plans from nothing, read where tfrun cannot point it at planned outputs (in
        a module). Else None: a failure like any other."""
        names, offset = self.overridden
        said = logs.tail(self.log, offset)
        their = "their" if len(self.planned) > 1 else "its"
        if self.planned and (
            planned.PLACEHOLDER_MARK in said
            or any(f"data.terraform_remote_state.{name}" in said for name in names)
        ):
            return tuple(self.planned), f"the plan read {their} planned outputs and failed on them"
        results = self.context.results
        new = tuple(
            rel
            for rel in self.context.dependencies
            if (upstream := results.get(rel)) is not None
            and upstream.has_changes
            and (upstream.outputs_plan or {}).get("new")
        )
        if new and MISSING_STATE in said:
            return new, "it reads a state that does not exist before that apply"
        return None

    def applied(self) -> Changes | None:
        """An apply's or a destroy's counts, as terraform summed them up at its end."""
        if self.job.foreground or self.job.command not in ("apply", "destroy"):
            return None
        counts = logs.applied(logs.tail(self.log, 0))
        return None if counts is None else Changes(*counts)

    async def plan_result(self, code: int, plan_file: Path) -> Result:
        attempts = self.attempts
        with suppress(OSError):
            os.chmod(plan_file, PRIVATE_FILE_MODE)  # it holds every variable's value
        changes: Changes = Changes()
        outputs: tuple[str, ...] = ()
        view = None
        if code == 2:
            changes, outputs, view = await self.read_plan(plan_file)
        # A destroy plan reads no upstream outputs that the run would change first.
        # (Those it read as planned include upstreams that other CI jobs planned.)
        upstream = tuple(self.planned) + tuple(
            dependency
            for dependency in self.context.dependencies
            if not self.job.destroy_plan
            and dependency not in self.planned
            and (before := self.context.results.get(dependency)) is not None
            and (before.output_changes or before.provisional)
        )
        return Result.succeeded(
            reason=self.note,
            exit_code=code,
            changes=changes,
            has_changes=code == 2,
            output_changes=outputs,
            provisional=upstream,
            planned_outputs=tuple(self.planned.values()),
            outputs_plan=view,
            attempts=attempts,
            log=self.log,
            plan_file=plan_file,
        )

    async def plan_through_planned_outputs(self, argv: Sequence[str], ok: frozenset[int]) -> int:
        """The plan, with this stack's reads of upstreams that are planned but not applied
        pointed at their planned outputs (planned.py) for this plan only."""
        results = self.context.results
        upstreams = {
            **self.job.upstream_plans,
            **{rel: results[rel] for rel in self.context.dependencies if rel in results},
        }
        reads, self.planned = provisional.planned_reads(
            self.job.repo, self.stack, upstreams, self.job.file
        )
        if not reads:
            self.overridden = ((), self.log_size())
            return await self.terraform("plan", argv, ok)
        listing = "; ".join(self.planned.values())
        self.write_log(f"tfrun: provisional plan: reads the planned outputs of {listing}")
        self.overridden = (tuple(reads), self.log_size())
        planned.write_override(self.stack.path, reads)
        try:
            return await self.terraform("plan", argv, ok)
        finally:
            planned.remove_override(self.stack.path)

    async def read_plan(self, plan_file: Path) -> tuple[Changes, tuple[str, ...], dict[str, Any]]:
        if self.context.stop.requested:
            raise Stopped
        plan_json = self.job.file(self.stack, ".plan.json")
        argv = [self.job.terraform.binary, "show", "-json", str(plan_file)]
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
        shown = plan if isinstance(plan, dict) else {}
        changes, outputs = Changes.from_plan(shown)
        return changes, outputs, planned.outputs_view(shown)


async def run_stack(stack: Stack, context: TaskContext, job: Job) -> Result:
    """The scheduler's task for one stack: whatever happens, one Result."""
    run = _StackRun(stack, context, job)

    def waiting(holder: str) -> None:
        context.progress("waiting for the stack lock")
        context.notice(f"waiting for {holder} to finish in this stack")

    try:
        make_private_dir(run.log.parent)
        async with stack_lock(
            stack,
            command=job.command,
            timeout=job.lock_timeout,
            stop=context.stop,
            waiting=waiting,
        ) as run.lock_fd:
            result = await run.run()
    except Killed as exc:
        result = Result.failed(
            str(exc), exit_code=128 + exc.signal, attempts=run.attempts, log=run.log
        )
    except TimedOut as exc:
        result = Result.failed(str(exc), attempts=run.attempts, log=run.log)
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
    except Exception as exc:
        # A bug in tfrun ends this stack alone: the others' terraform must never be stopped
        # halfway by it.
        with suppress(OSError):
            run.write_log("".join(traceback.format_exception(exc)))
        result = Result.failed(
            f"internal error in tfrun ({type(exc).__name__}: {exc}); the traceback is in the "
            "log. This is a bug in tfrun: please report it.",
            attempts=run.attempts,
            log=run.log,
        )
    if not result.ok:
        # The log alone tells the whole story, even when terraform never ran.
        with suppress(OSError):
            run.write_log(f"tfrun: {result.status}: {result.reason}")
    return result
