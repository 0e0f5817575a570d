"""The laptop wrapper's short way: a read-only terraform command in one stack (`tfrun plan`,
`tfrun output -raw vpc_id`) that a full run prepared a moment ago runs as terraform itself.

A full run of such a command (commands/run.py) ends by remembering what it did: terraform's
command line and environment, and the signature (`stat`) of everything it looked at on the way:
the config files from the live root down (and those of the stacks whose keys its generated
remote state names), the stack's own files, the generated files and the init marker, the
binary, the sandbox's record; with the environment, the terminal and tfrun's own code. When the
same command is typed again in the same folder, `replay` checks those signatures (a few dozen
`stat` calls; nothing imported but the standard library), takes the stack lock, notes the run
in a run folder and becomes terraform (exec: same pid, terraform's own exit status, the
terminal's signals, the stack lock held until terraform exits). Anything changed, and the full
run happens again and remembers anew.

What the full run checks and this does not: the state keys of the other stacks of the
repository (the shared-state rule, which stops commands that write; this runs read-only ones
only), and the identity check, whose answers it trusts as long as the identity cache does
(15 minutes). Never in CI, where each job runs once. `TFRUN_EXPRESS=0` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tfrun.fingerprint import code_key, environment_key, find_root, signature

# Not typing's: the short way imports as little as it can (typing and dataclasses, with what
# they import, were a third of what tfrun added to a command).
TYPE_CHECKING = False
if TYPE_CHECKING:  # the full run's side; the short way imports nothing of tfrun's but this
    from tfrun.discovery import Stack
    from tfrun.terraform import Terraform
    from tfrun.workspace import Workspace

SETTING = "TFRUN_EXPRESS"
RECORDS = os.path.join(".tfrun", "cache", "express")
_FORMAT = 1
# Terraform commands that change neither infrastructure nor state, nor files tfrun reads.
COMMANDS = frozenset(
    {"plan", "output", "show", "validate", "providers", "graph", "console", "version",
     "state list", "state show", "state pull", "workspace show", "workspace list"}
)  # fmt: skip
# An input written this close to the full run's start may have changed while it read it.
_SETTLED_S = 2.0
NOTE = "tfrun: run as terraform itself: nothing tfrun prepares here changed since the last run"


class Launch:
    """What a full run did in the end, and what must be as it was for it to do it again."""

    argv: list[str]  # terraform's, the binary's full path first
    cwd: str  # the stack's folder
    env_set: dict[str, str]  # terraform's environment: this process's, with these changes
    env_unset: list[str]
    command: str  # for the run folder's name
    logged: str  # the command line as the log shows it (secrets redacted)
    lock: str  # the stack lock, and the file naming who holds it
    owner: str
    keep_runs: int
    until: float  # time.time() after which the identity check is due again
    # path → signature; None: the file must not exist.
    files: dict[str, list[int] | None]
    listings: dict[str, list[str]]  # folder → the names in it that tfrun reads
    sandbox_pid: int | None

    def __init__(self, **fields: object) -> None:
        if fields.keys() != Launch.__annotations__.keys():
            raise TypeError("not a record of this tfrun")
        self.__dict__.update(fields)


def listing(folder: str) -> list[str]:
    """The names in a stack's folder that decide what tfrun does there."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.endswith((".tf", ".tf.json", ".hcl")))


def _environment_key(environ: Mapping[str, str]) -> str:
    terminal = "".join("t" if os.isatty(fd) else "-" for fd in (0, 1, 2))
    return f"{environment_key(environ)} {terminal}"


def _record_path(root: str, cwd: str, tfrun_argv: Sequence[str]) -> str:
    key = hashlib.sha256(json.dumps([cwd, list(tfrun_argv)]).encode()).hexdigest()[:32]
    return os.path.join(root, RECORDS, f"{key}.json")


def _enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(SETTING, "1").strip().lower() not in ("0", "false", "no", "off")


def _load(path: str) -> Launch | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.pop("format", None) != _FORMAT or data.pop("code", None) != code_key():
            return None
        if data.pop("environment", None) != _environment_key(os.environ):
            return None
        return Launch(**data)
    except (OSError, ValueError, TypeError):
        return None


def _unchanged(launch: Launch) -> bool:
    if time.time() >= launch.until:
        return False
    if any(signature(path) != known for path, known in launch.files.items()):
        return False
    if any(listing(folder) != names for folder, names in launch.listings.items()):
        return False
    if launch.sandbox_pid is not None:
        try:
            os.kill(launch.sandbox_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    return True


def _take_lock(path: str) -> int | None:
    """The stack lock, if free now; a held one is the full run's to wait for and explain."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def replay(tfrun_argv: Sequence[str]) -> None:
    """Become terraform when the full run would do exactly what it did last time in this
    folder; return (having changed nothing) when it might not."""
    if not tfrun_argv or not _enabled(os.environ):
        return
    try:
        cwd = os.getcwd()
    except OSError:
        return
    root = find_root(cwd)
    if root is None:
        return
    launch = _load(_record_path(root, cwd, tfrun_argv))
    if launch is None or not _unchanged(launch):
        return
    fd = _take_lock(launch.lock)
    if fd is None:
        return
    try:
        _note_run(root, launch)
        env = {**os.environ, **launch.env_set}
        for name in launch.env_unset:
            env.pop(name, None)
        os.set_inheritable(fd, True)  # terraform holds the stack until it exits
        sys.stdout.flush()
        os.chdir(launch.cwd)
        os.execve(launch.argv[0], launch.argv, env)
    except OSError:
        os.close(fd)  # the full run says what is wrong
        os.chdir(cwd)


def _note_run(root: str, launch: Launch) -> None:
    from tfrun.files import open_private
    from tfrun.run.folder import new_run_dir

    run_dir = new_run_dir(Path(root), launch.command, launch.keep_runs)
    rel = os.path.relpath(launch.cwd, root)
    log = run_dir / f"{rel}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_private(log), "a", encoding="utf-8") as handle:
        handle.write(f"$ {launch.logged}\n{NOTE}\n")
    since = time.strftime("%H:%M:%S")
    pid = os.getpid()
    with open(launch.owner, "w", encoding="utf-8") as handle:
        handle.write(f"terraform {launch.command} (pid {pid}, started by tfrun pid {pid} at "
                     f"{since})\n")  # fmt: skip


# --- The full run's side ---------------------------------------------------------------------


def enabled_here(environ: Mapping[str, str], in_ci: bool) -> bool:
    return not in_ci and _enabled(environ)


def launch_of(
    workspace: Workspace, stack: Stack, toolchain: Terraform, argv: Sequence[str], until: float
) -> tuple[Launch, list[str]]:
    """What the full run of one foreground command did, and every file whose change could
    make it do something else, with those of them it read (not wrote)."""
    from tfrun import sandbox
    from tfrun.config import ROOT_FILE, STACK_FILE
    from tfrun.configured import var_file_candidates
    from tfrun.discovery import GENERATED_NAMES
    from tfrun.run import logs
    from tfrun.run.folder import DEFAULT_KEEP_RUNS
    from tfrun.run.locks import owner_path, stack_lock_path
    from tfrun.terraform import INIT_MARKER

    files: dict[str, list[int] | None] = {}
    inputs: list[str] = []

    def watch(path: Path, *, written: bool = False) -> None:
        files[str(path)] = signature(str(path))
        if not written:
            inputs.append(str(path))

    # The config of this stack, and of the stacks its generated remote state names the keys of.
    targets = [(stack.path / rel).resolve() for rel in stack.config.remote_state.values()]
    for folder in {Path.cwd(), stack.path, *targets}:
        for above in (folder, *folder.parents):
            watch(above / ROOT_FILE)
        watch(folder / STACK_FILE)
    # Var files found up the tree (one added or removed changes terraform's command line).
    for path in var_file_candidates(stack):
        watch(path)
    listed = listing(str(stack.path))
    for name in listed:
        watch(stack.path / name, written=name in GENERATED_NAMES)
    for path in (
        stack.path / ".terraform" / INIT_MARKER,
        stack.path / ".terraform.lock.hcl",
        workspace.root / ".gitignore",
        Path(toolchain.binary),
    ):
        watch(path, written=True)
    box = sandbox.lookup(workspace.root)
    if box is not None:
        watch(box.state_file)
    lock = stack_lock_path(stack)
    launch = Launch(
        argv=list(argv),
        cwd=str(stack.path),
        env_set={k: v for k, v in toolchain.env.items() if os.environ.get(k) != v},
        env_unset=[k for k in os.environ if k not in toolchain.env],
        command=argv[1],
        logged=logs.redact(argv),
        lock=str(lock),
        owner=str(owner_path(lock)),
        keep_runs=stack.config.keep_runs or DEFAULT_KEEP_RUNS,
        until=until,
        files=files,
        listings={str(stack.path): listed},
        sandbox_pid=box.box.pid if box is not None and box.box is not None else None,
    )
    return launch, inputs


def remember(
    root: str,
    tfrun_argv: Sequence[str],
    launch: Launch,
    inputs: Iterable[str],
    started: float,
) -> bool:
    """Keep `launch` for the next identical command in this folder, unless one of the `inputs`
    (the files the full run read, as opposed to those it wrote) changed too close to its start
    to be sure it read what the signature says. True when kept."""
    cwd = os.getcwd()
    path = _record_path(root, cwd, tfrun_argv)
    for name in inputs:
        try:
            if os.stat(name).st_mtime >= started - _SETTLED_S:
                forget(root, tfrun_argv)
                return False
        except OSError:
            continue
    from tfrun.files import write_atomically

    data = {
        "format": _FORMAT,
        "code": code_key(),
        "environment": _environment_key(os.environ),
        **vars(launch),
    }
    write_atomically(Path(path), json.dumps(data), private=True)
    return True


def forget(root: str, tfrun_argv: Sequence[str]) -> None:
    """What a full run that may not be repeated this way leaves behind."""
    with contextlib.suppress(OSError):
        os.unlink(_record_path(root, os.getcwd(), tfrun_argv))
