"""What a live root's commands target, the sandbox or AWS, and how that changes.

A sandbox that was in use and has died stops every command that would write generated files
or run terraform (exit 4); only `tfrun sandbox up` and `tfrun sandbox down` switch. After a
switch, each stack re-initialises with -reconfigure (never -migrate-state: a sandbox's state is
throwaway) and says so in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fake_terraform import write_shim
from helpers import Result, StateBackend, root_hcl, run_cli, write_tree

from tfrun import sandbox, terraform
from tfrun.discovery import Repository
from tfrun.errors import ExitCode
from tfrun.sandbox import server as sandbox_server

STACK = "staging-eu-west-1/network"
OTHER = "staging-eu-west-1/app"
BAD_CONFIG = int(ExitCode.BAD_CONFIG)
# Nothing listens here; a command that wrongly reached it would fail, never leave the machine.
CLOSED = "http://127.0.0.1:9"


class Live:
    """A live root with two stacks whose terraform is tests/fake_terraform.py."""

    def __init__(self, tmp_path: Path, bucket: str | None = None) -> None:
        self.bucket = bucket or f"sbx-target-{uuid.uuid4().hex[:10]}"
        self.root = write_tree(
            tmp_path / "live",
            {
                "tfrun.hcl": root_hcl(self.bucket),
                f"{STACK}/main.tf": 'output "vpc_id" { value = "vpc-1" }\n',
                f"{OTHER}/main.tf": 'output "name" { value = "app" }\n',
            },
        )
        self.record = tmp_path / "record.jsonl"
        self.env = {
            **os.environ,
            "FAKE_TF_RECORD": str(self.record),
            "TFRUN_TERRAFORM": str(write_shim(tmp_path / "bin")),
            "TF_PLUGIN_CACHE_DIR": str(tmp_path / "plugins"),
        }

    def tfrun(self, *args: str, cwd: Path | None = None, **extra: str) -> Result:
        return run_cli(args, cwd or self.root, {**self.env, **extra})

    def runs(self) -> list[list[str]]:
        """The arguments of every terraform started so far."""
        if not self.record.exists():
            return []
        lines = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [line["args"] for line in lines if line["event"] == "start"]

    def inits(self, since: int = 0) -> list[list[str]]:
        return [args for args in self.runs()[since:] if args[0] == "init"]

    def files(self) -> dict[str, tuple[bytes, int]]:
        """Every file of the repository but tfrun's own folder, with its content and mtime."""
        found = {}
        for path in self.root.rglob("*"):
            rel = path.relative_to(self.root)
            if path.is_file() and rel.parts[0] != ".tfrun":
                found[str(rel)] = (path.read_bytes(), path.stat().st_mtime_ns)
        return found

    def backend(self, rel: str = STACK) -> str:
        return (self.root / rel / "backend.tf").read_text(encoding="utf-8")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    repo = Live(tmp_path)
    yield repo
    sandbox.down(repo.root)


def _kill(root: Path, box: sandbox.Sandbox) -> None:
    """moto dies under the user's feet (the OOM killer, a closed terminal, a reboot)."""
    psutil.Process(box.pid).kill()
    deadline = time.monotonic() + 10
    while (record := sandbox.lookup(root)) is not None and record.running:
        assert time.monotonic() < deadline, "moto did not die"
        time.sleep(0.05)


def _assert_stopped_by_the_dead_sandbox(result: Result, box: sandbox.Sandbox) -> None:
    result.assert_exit(BAD_CONFIG)
    assert result.stderr.count("tfrun: error:") == 1, result
    message = " ".join(result.stderr.split())
    assert f"pid {box.pid}, endpoint {box.endpoint}) is not running" in message, result
    assert "started 20" in message
    assert "'tfrun sandbox up' to start it again" in message
    assert "'tfrun sandbox down' to forget it and target AWS" in message
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# A dead sandbox stops everything; `down` and `up` are the only ways on.


def test_a_dead_sandbox_stops_every_command_until_down(live: Live) -> None:
    box = sandbox.up(live.root)
    live.tfrun("run-all", "plan").assert_success()
    assert f'"{box.endpoint}"' in live.backend()
    _kill(live.root, box)
    before, runs = live.files(), len(live.runs())

    commands: list[tuple[tuple[str, ...], Path, dict[str, str]]] = [
        (("plan", STACK), live.root, {}),
        (("apply", STACK, "--yes"), live.root, {}),
        (("run-all", "plan"), live.root, {}),
        (("init",), live.root / STACK, {}),
        (("output",), live.root / STACK, {}),
        (("generate",), live.root, {}),
        (("generate", "--check"), live.root, {}),
        (("check",), live.root, {}),
        (("sandbox", "env"), live.root, {}),
        # As after `eval "$(tfrun sandbox env)"`: the variable names the dead sandbox.
        (("plan", STACK), live.root, {"TFRUN_AWS_ENDPOINT": box.endpoint}),
    ]
    for args, cwd, extra in commands:
        _assert_stopped_by_the_dead_sandbox(live.tfrun(*args, cwd=cwd, **extra), box)

    assert live.files() == before, "a generated file changed"
    assert live.runs()[runs:] == [], "terraform ran"
    status = live.tfrun("sandbox", "status").assert_exit(BAD_CONFIG)
    assert "sandbox dead: started 20" in status.stderr
    assert f"pid {box.pid}, endpoint {box.endpoint}" in " ".join(status.stderr.split())
    assert (box.state_dir / sandbox.STATE_FILE).exists(), "status removed the record"

    down = live.tfrun("sandbox", "down").assert_success()
    assert "was not running; its record is removed" in " ".join(down.stderr.split())
    assert not box.state_dir.exists()
    live.tfrun("sandbox", "status").assert_exit(int(ExitCode.STACK_FAILED))

    # The person chose AWS: each stack says so and takes its new backend with -reconfigure.
    runs = len(live.runs())
    to_aws = live.tfrun("run-all", "plan").assert_success()
    notice = f"backend now s3://{live.bucket} (AWS), was the sandbox at {box.endpoint}"
    for rel in (STACK, OTHER):
        assert f"{rel}: {notice}" in to_aws.stderr
    assert box.endpoint not in live.backend() and "endpoints" not in live.backend()
    inits = live.inits(runs)
    assert len(inits) == 2 and all("-reconfigure" in init for init in inits)
    assert not any("-migrate-state" in init for init in inits)

    # And back: a new sandbox is a switch too, said once, after which nothing re-inits.
    new = sandbox.up(live.root)
    runs = len(live.runs())
    back = live.tfrun("plan", STACK).assert_success()
    assert f"backend now the sandbox at {new.endpoint}, was s3://{live.bucket} (AWS)" in (
        back.stderr
    )
    assert live.inits(runs) == [["init", "-input=false", "-reconfigure", "-no-color"]]
    runs = len(live.runs())
    again = live.tfrun("plan", STACK).assert_success()
    assert "backend now" not in again.stderr
    assert live.inits(runs) == []


def test_up_replaces_a_dead_sandbox(live: Live) -> None:
    old = sandbox.up(live.root)
    live.tfrun("plan", STACK).assert_success()
    _kill(live.root, old)

    up = live.tfrun("sandbox", "up").assert_success()
    text = " ".join(up.stderr.split())
    assert f"pid {old.pid}, endpoint {old.endpoint}) was not running" in text
    assert "this is a new one, empty" in text
    new = sandbox.current(live.root)
    assert new is not None and new.pid != old.pid
    live.tfrun("sandbox", "status").assert_success()

    runs = len(live.runs())
    result = live.tfrun("plan", STACK).assert_success()
    assert f'"{new.endpoint}"' in live.backend()
    if new.endpoint != old.endpoint:  # a new port, nearly always: a switch like any other
        assert f"backend now the sandbox at {new.endpoint}, was the sandbox at {old.endpoint}" in (
            result.stderr
        )
    else:
        assert "backend now" not in result.stderr
    assert [args[0] for args in live.runs()[runs:]][-1] == "plan"


# ---------------------------------------------------------------------------------------------
# The endpoint a command resolves, with a dead sandbox recorded (no server needed).


def _dead_record(root: Path) -> sandbox.Sandbox:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    state_dir = sandbox.state_dir_for(root)
    state_dir.mkdir(parents=True)
    state = {"pid": child.pid, "port": 1, "endpoint": "http://127.0.0.1:1", "started": ""}
    (state_dir / sandbox.STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    box = sandbox_server.read_state(state_dir)
    assert box is not None
    return box


def test_only_an_endpoint_named_elsewhere_passes_a_dead_sandbox(live: Live) -> None:
    box = _dead_record(live.root)
    repo = Repository(live.root)
    with pytest.raises(
        sandbox.SandboxDeadError,
        match=r"\(started 20\d\d-.*, pid \d+, endpoint http://127\.0\.0\.1:1\)",
    ):
        terraform.local_endpoint(repo, {})
    with pytest.raises(sandbox.SandboxDeadError):
        terraform.resolve(repo, live.env["TFRUN_TERRAFORM"], {})
    with pytest.raises(sandbox.SandboxDeadError):
        terraform.local_endpoint(repo, {"TFRUN_AWS_ENDPOINT": box.endpoint + "/"})
    # Another local endpoint named explicitly is not the sandbox, and is no fallback to AWS.
    assert terraform.local_endpoint(repo, {"TFRUN_AWS_ENDPOINT": CLOSED}) == CLOSED
    chain = terraform.resolve(repo, live.env["TFRUN_TERRAFORM"], {"TFRUN_AWS_ENDPOINT": CLOSED})
    assert chain.endpoint == CLOSED and not chain.sandbox


# ---------------------------------------------------------------------------------------------
# The init marker records the target; a switch re-inits with -reconfigure (fake terraform).


def _marker(live: Live, rel: str = STACK) -> Any:
    return json.loads((live.root / rel / ".terraform" / terraform.INIT_MARKER).read_text())


def test_a_switch_of_target_reinitialises_with_reconfigure(live: Live) -> None:
    live.tfrun("plan", STACK, TFRUN_AWS_ENDPOINT=CLOSED).assert_success()
    marker = _marker(live)
    assert marker["endpoint"] == CLOSED and marker["target"] == f"the local endpoint {CLOSED}"

    runs = len(live.runs())
    to_aws = live.tfrun("plan", STACK).assert_success()
    assert f"backend now s3://{live.bucket} (AWS), was the local endpoint {CLOSED}" in (
        to_aws.stderr
    )
    assert to_aws.stderr.count("backend now") == 1
    assert "running terraform init" not in to_aws.stderr  # one line says it all
    assert [init[:3] for init in live.inits(runs)] == [["init", "-input=false", "-reconfigure"]]
    assert _marker(live)["endpoint"] is None

    # Unchanged: no init, no notice.
    runs = len(live.runs())
    same = live.tfrun("plan", STACK).assert_success()
    assert "backend now" not in same.stderr and live.inits(runs) == []

    # In a run over many stacks, each stack says it once.
    runs = len(live.runs())
    many = live.tfrun("run-all", "plan", TFRUN_AWS_ENDPOINT=CLOSED).assert_success()
    assert f"{STACK}: backend now the local endpoint {CLOSED}, was s3://{live.bucket} (AWS)" in (
        many.stderr
    )
    assert f"{OTHER}: backend now" not in many.stderr  # never initialised: nothing to switch
    assert all("-reconfigure" in init for init in live.inits(runs))


def test_a_persons_init_after_a_switch_gets_reconfigure_unless_they_chose(live: Live) -> None:
    live.tfrun("plan", STACK, TFRUN_AWS_ENDPOINT=CLOSED).assert_success()

    runs = len(live.runs())
    result = live.tfrun("init", cwd=live.root / STACK).assert_success()
    assert "backend now s3://" in result.stderr
    assert live.inits(runs) == [["init", "-reconfigure"]]

    live.tfrun("init", cwd=live.root / STACK, TFRUN_AWS_ENDPOINT=CLOSED).assert_success()
    runs = len(live.runs())
    live.tfrun("init", "-migrate-state", cwd=live.root / STACK).assert_success()
    assert live.inits(runs) == [["init", "-migrate-state"]]


def test_a_marker_of_an_older_tfrun_is_no_switch(live: Live) -> None:
    live.tfrun("plan", STACK).assert_success()
    marker = live.root / STACK / ".terraform" / terraform.INIT_MARKER
    marker.write_text(json.dumps({"fingerprint": "older"}), encoding="utf-8")

    runs = len(live.runs())
    result = live.tfrun("plan", STACK).assert_success()
    assert "backend now" not in result.stderr
    assert [init[:2] for init in live.inits(runs)] == [["init", "-input=false"]]
    assert "-reconfigure" not in live.inits(runs)[0]
    assert _marker(live)["endpoint"] is None  # recorded from now on


# ---------------------------------------------------------------------------------------------
# Real terraform: the sandbox, then `down`. Nothing leaves 127.0.0.1.

_APP = """
output "greeting" { value = "hello" }
"""


def _aws_without_network(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """The real-AWS environment of a laptop with no credentials, where nothing can leave the
    machine: no instance metadata, every endpoint and proxy a closed loopback port."""
    out = {k: v for k, v in env.items() if not k.startswith(("AWS_", "TFRUN_AWS_"))}
    config = write_tree(scratch, {"aws-config": "[default]\nregion = eu-west-1\n"})
    out.update(
        {
            "AWS_CONFIG_FILE": str(config / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(config / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": CLOSED,
            "AWS_ENDPOINT_URL_S3": CLOSED,
            "AWS_ENDPOINT_URL_STS": CLOSED,
            "AWS_ENDPOINT_URL_DYNAMODB": CLOSED,
            "HTTPS_PROXY": CLOSED,
            "HTTP_PROXY": CLOSED,
            "https_proxy": CLOSED,
            "http_proxy": CLOSED,
            "NO_PROXY": "",
            "no_proxy": "",
        }
    )
    return out


def _logs(root: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for p in sorted(root.glob(".tfrun/runs/*/**/*.log"))
    )


@pytest.mark.slow
def test_real_terraform_follows_an_explicit_switch(
    tmp_path: Path, tf_env: dict[str, str], state_backend: StateBackend
) -> None:
    live = write_tree(
        tmp_path / "live",
        {"tfrun.hcl": state_backend.root_hcl(), f"{STACK}/main.tf": _APP},
    )
    # The session's moto is another endpoint, named by the variable; the live root's own
    # sandbox is used only without it.
    own = {k: v for k, v in tf_env.items() if not k.startswith(("AWS_", "TFRUN_AWS_"))}
    box = sandbox.up(live)
    try:
        run_cli(["apply", STACK, "--yes", "-no-color"], live, own).assert_success()
        key = "staging/eu-west-1/network.tfstate"
        s3 = box.client("s3", state_backend.region)
        listed = s3.list_objects_v2(Bucket=state_backend.bucket).get("Contents", [])
        assert [item["Key"] for item in listed] == [key]
        run_cli(["sandbox", "down"], live, own).assert_success()
    finally:
        sandbox.down(live)

    # AWS now: init takes the new backend and gets as far as credentials, which this machine
    # has none of. Without -reconfigure it would stop at "Backend configuration changed".
    to_aws = run_cli(
        ["plan", STACK, "-no-color"], live, _aws_without_network(own, tmp_path / "aws")
    )
    to_aws.assert_exit(int(ExitCode.STACK_FAILED))
    notice = f"backend now s3://{state_backend.bucket} (AWS), was the sandbox at {box.endpoint}"
    assert notice in to_aws.stderr
    assert "Backend configuration changed" not in to_aws.output
    assert "No valid credential sources found" in to_aws.output
    assert "init -input=false -reconfigure -no-color" in _logs(live)
    marker = json.loads((live / STACK / ".terraform" / terraform.INIT_MARKER).read_text())
    assert marker["endpoint"] == box.endpoint  # the failed init did not count

    # Another local endpoint (the session's moto): the switch is said and init succeeds.
    other = run_cli(["apply", STACK, "--yes", "-no-color"], live, tf_env).assert_success()
    assert (
        f"backend now the local endpoint {tf_env['TFRUN_AWS_ENDPOINT']}, was the sandbox at "
        f"{box.endpoint}" in other.stderr
    )
    assert state_backend.object_keys() == [key]


def test_an_environment_added_after_up_gets_its_profile(live: Live) -> None:
    """The new environment's profile is defined in the sandbox by the next command that
    runs terraform; no second `tfrun sandbox up` is needed (and its state is kept)."""
    live.tfrun("sandbox", "up").assert_success()
    box = sandbox.current(live.root)
    assert box is not None
    root = live.root / "tfrun.hcl"
    root.write_text(
        root.read_text().replace(
            "environments {\n",
            'environments {\n  qa = { account_id = "444444444444", profile = "qa" }\n',
        )
    )
    write_tree(live.root, {"qa-eu-west-1/network/main.tf": 'output "a" { value = 1 }\n'})
    assert "[profile qa]" not in box.config_file.read_text()
    live.tfrun("plan", "qa-eu-west-1/network").assert_success()
    config = box.config_file.read_text()
    assert "[profile qa]" in config and "[profile staging]" in config
    assert "[qa]" in box.credentials_file.read_text()
    assert sandbox.current(live.root) == box  # the same sandbox
