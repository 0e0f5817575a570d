"""The sandbox with real moto servers, and the harness fixtures that the rest of the suite uses."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import psutil
import pytest
from helpers import (
    PROVIDER_MIRROR_VARIABLE,
    LiveRepo,
    StateBackend,
    cli_config_text,
    find_provider_mirror,
    root_hcl,
    run_cli,
    write_tree,
)

from tfrun import process, sandbox
from tfrun.errors import ConfigError, ExitCode, ToolMissingError
from tfrun.sandbox import root as sandbox_root
from tfrun.sandbox import server as sandbox_server


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def live_root(tmp_path: Path) -> Iterator[Path]:
    """A live root with its own bucket names; any sandbox started for it is stopped after."""
    root = write_tree(
        tmp_path / "live",
        {"tfrun.hcl": root_hcl(_unique("sbx-state"), "eu-west-1", _unique("sbx-locks"))},
    )
    yield root
    sandbox.down(root)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running(pid: int) -> bool:
    """Alive, and not a zombie waiting for its parent to collect it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _looks_like_moto(port: int, body: str) -> list[str]:
    """A Python one-liner whose command line names moto's server and `port`, as ours does."""
    return [sys.executable, "-c", body, "moto.server", "-p", str(port)]


def _write_state(root: Path, pid: int, port: int) -> Path:
    state_file = sandbox.state_dir_for(root) / sandbox.STATE_FILE
    state_file.parent.mkdir(parents=True)
    state_file.write_text(json.dumps({"pid": pid, "port": port, "endpoint": "x"}))
    return state_file


# ---------------------------------------------------------------------------------------------
# up / status / down


def test_up_status_down(live_root: Path) -> None:
    assert sandbox.current(live_root) is None

    box = sandbox.up(live_root)

    assert box.endpoint == f"http://127.0.0.1:{box.port}"
    assert box.state_dir == live_root.resolve() / ".tfrun" / "sandbox"
    assert sandbox.current(live_root) == box
    state = json.loads((box.state_dir / "sandbox.json").read_text())
    assert (state["pid"], state["port"], state["endpoint"]) == (box.pid, box.port, box.endpoint)
    assert state["started"] == box.started and box.started.startswith(time.strftime("%Y-"))

    stopped = sandbox.down(live_root)
    assert stopped is not None and stopped.running and stopped.box == box
    assert not _running(box.pid)
    assert not box.state_dir.exists()
    assert sandbox.current(live_root) is None
    assert sandbox.down(live_root) is None


def test_down_stops_only_its_own_roots_sandbox(live_root: Path, tmp_path: Path) -> None:
    other_root = write_tree(tmp_path / "other", {"tfrun.hcl": root_hcl(_unique("sbx-other"))})
    try:
        other = sandbox.up(other_root)
        mine = sandbox.up(live_root)
        assert other.pid != mine.pid and other.port != mine.port
        assert sandbox.down(live_root) is not None
        assert not _running(mine.pid)
        assert sandbox.current(other_root) == other
    finally:
        sandbox.down(other_root)


def test_up_is_idempotent(live_root: Path) -> None:
    first = sandbox.up(live_root)
    second = sandbox.up(live_root)
    assert second == first
    assert _running(first.pid)


def test_up_creates_the_state_bucket_and_lock_table(live_root: Path) -> None:
    box = sandbox.up(live_root)
    text = (live_root / "tfrun.hcl").read_text()
    bucket = text.split('bucket = "')[1].split('"')[0]
    table = text.split('dynamodb_table = "')[1].split('"')[0]

    s3 = box.client("s3", "eu-west-1")
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"

    description = box.client("dynamodb", "eu-west-1").describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert description["AttributeDefinitions"] == [
        {"AttributeName": "LockID", "AttributeType": "S"}
    ]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_profiles_of_the_root_config_resolve(
    live_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    box = sandbox.up(live_root)
    # Real-looking credentials and a profile of the user's shell must not win over the sandbox.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEYREALKEY00")
    monkeypatch.setenv("AWS_PROFILE", "my-real-profile")
    for name, value in box.environ().items():
        monkeypatch.setenv(name, value)

    for profile in ("prod", "staging", "shared", "default"):
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
        assert credentials is not None
        assert credentials.access_key == sandbox_server._access_key(profile)
        assert session.region_name == "eu-west-1"
        # No endpoint_url here: the profile and AWS_ENDPOINT_URL send it to the sandbox.
        names = [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]]
        assert len(names) == 1 and names[0].startswith("sbx-state-")

    plain = boto3.Session()
    assert plain.get_credentials().access_key == sandbox.ACCESS_KEY_ID
    assert plain.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_environ_names_the_sandbox_files(live_root: Path) -> None:
    box = sandbox.up(live_root)
    env = box.environ()
    assert env["TFRUN_AWS_ENDPOINT"] == box.endpoint
    assert env["AWS_CONFIG_FILE"] == str(box.config_file)
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(box.credentials_file)
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    config = box.config_file.read_text()
    for header in ("[default]", "[profile prod]", "[profile staging]", "[profile shared]"):
        assert header in config
    assert "[prod]" in box.credentials_file.read_text()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_aws_files_are_private(live_root: Path) -> None:
    box = sandbox.up(live_root)
    assert _mode(box.state_dir) == 0o700
    assert _mode(box.config_file) == 0o600
    assert _mode(box.credentials_file) == 0o600
    # Files an older tfrun left open to all are made private when the sandbox is provisioned.
    for path in (box.state_dir, box.config_file, box.credentials_file):
        path.chmod(0o755)
    sandbox.up(live_root)
    assert _mode(box.state_dir) == 0o700
    assert _mode(box.config_file) == 0o600
    assert _mode(box.credentials_file) == 0o600


def test_provision_is_idempotent_and_keeps_earlier_profiles(
    moto_sandbox: sandbox.Sandbox,
) -> None:
    bucket, table = _unique("sbx-idem"), _unique("sbx-idem-locks")
    sandbox.provision(moto_sandbox, bucket, "us-east-1", table, ["alpha"])
    sandbox.provision(moto_sandbox, bucket, "us-east-1", table, ["beta"])
    config = moto_sandbox.config_file.read_text()
    assert "[profile alpha]" in config and "[profile beta]" in config
    tables = moto_sandbox.client("dynamodb", "us-east-1").list_tables()["TableNames"]
    assert tables.count(table) == 1


def test_a_profile_name_that_breaks_the_config_file_is_refused(
    moto_sandbox: sandbox.Sandbox,
) -> None:
    with pytest.raises(ConfigError, match="cannot be written to an AWS config file"):
        sandbox.provision(moto_sandbox, _unique("sbx"), "eu-west-1", None, ["prod]\n[x"])


# ---------------------------------------------------------------------------------------------
# Stale and foreign state


def test_a_dead_sandbox_stays_recorded_until_up_replaces_it(live_root: Path) -> None:
    dead = _dead_pid()
    state_file = _write_state(live_root, dead, 1)

    with pytest.raises(sandbox.SandboxDeadError) as caught:
        sandbox.current(live_root)
    assert caught.value.exit_code == ExitCode.BAD_CONFIG
    assert f"pid {dead}, endpoint http://127.0.0.1:1" in str(caught.value)
    assert state_file.exists()  # reading it never switches the target
    record = sandbox.lookup(live_root)
    assert record is not None and not record.running

    box = sandbox.up(live_root)
    assert _running(box.pid)
    assert sandbox.current(live_root) == box


def test_a_failed_up_never_switches_the_root_to_aws(
    live_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*_args: object) -> None:
        raise sandbox.SandboxError("provisioning failed")

    monkeypatch.setattr(sandbox_root, "provision", fails)
    # Never in use: nothing is left behind.
    with pytest.raises(sandbox.SandboxError, match="provisioning failed"):
        sandbox.up(live_root)
    assert sandbox.lookup(live_root) is None
    # In use and dead: commands stay stopped, as they were before this `up`.
    _write_state(live_root, _dead_pid(), 1)
    with pytest.raises(sandbox.SandboxError, match="provisioning failed"):
        sandbox.up(live_root)
    record = sandbox.lookup(live_root)
    assert record is not None and not record.running
    assert record.box is not None and not _running(record.box.pid)
    with pytest.raises(sandbox.SandboxDeadError):
        sandbox.current(live_root)


def test_down_removes_a_dead_sandboxs_record(live_root: Path) -> None:
    state_file = _write_state(live_root, _dead_pid(), 1)
    record = sandbox.down(live_root)
    assert record is not None and not record.running
    assert not state_file.exists()
    assert sandbox.current(live_root) is None


def test_a_pid_that_is_no_longer_moto_is_never_stopped(live_root: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state_file = _write_state(live_root, stranger.pid, 4242)
        record = sandbox.down(live_root)
        assert record is not None and not record.running
        assert stranger.poll() is None
        assert not state_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


@contextlib.contextmanager
def _never_collected(body: str) -> Iterator[int]:
    """The pid of a 'moto' (`body`, which prints a line when ready) whose parent never
    collects it when it dies, as under an init that does not reap: it stays a zombie."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)\n"
            "child.stdout.readline()\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
            *_looks_like_moto(4242, body),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        yield int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()


def _found(root: Path, pid: int, port: int) -> sandbox.Sandbox:
    _write_state(root, pid, port)
    box = sandbox.current(root)
    assert box is not None and box.pid == pid
    return box


def test_a_zombie_server_is_not_running(live_root: Path) -> None:
    with _never_collected("print('ready', flush=True)") as pid:
        while _running(pid):
            time.sleep(0.01)
        assert psutil.pid_exists(pid)
        state_file = _write_state(live_root, pid, 4242)
        record = sandbox.lookup(live_root)
        assert record is not None and not record.running
        with pytest.raises(sandbox.SandboxDeadError):
            sandbox.current(live_root)
        assert state_file.exists()


def test_stop_does_not_wait_for_a_zombie_to_be_collected(live_root: Path) -> None:
    with _never_collected("import time; print('ready', flush=True); time.sleep(60)") as pid:
        box = _found(live_root, pid, 4242)
        started = time.monotonic()
        sandbox.stop(box, timeout=5)
        assert time.monotonic() - started < 4
        assert not _running(pid)


def test_stop_kills_a_server_that_ignores_sigterm(live_root: Path) -> None:
    body = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = subprocess.Popen(_looks_like_moto(4242, body), stdout=subprocess.PIPE, text=True)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
        box = _found(live_root, stubborn.pid, 4242)
        started = time.monotonic()
        sandbox.stop(box, timeout=0.5)
        # SIGTERM first, and SIGKILL only once it was ignored for the whole timeout.
        assert time.monotonic() - started >= 0.5
        assert not _running(stubborn.pid)
    finally:
        stubborn.kill()
        stubborn.wait()


def test_a_malformed_state_file_stops_commands_until_down(live_root: Path) -> None:
    state_file = sandbox.state_dir_for(live_root) / sandbox.STATE_FILE
    state_file.parent.mkdir(parents=True)
    state_file.write_text("{not json")
    # Whether its sandbox runs cannot be told, so it is not taken for "no sandbox" (AWS).
    with pytest.raises(sandbox.SandboxDeadError, match=f"its record {state_file} cannot be"):
        sandbox.current(live_root)
    assert state_file.exists()
    assert sandbox.down(live_root) is not None
    assert not state_file.exists()
    assert sandbox.current(live_root) is None


# ---------------------------------------------------------------------------------------------
# Failures


def test_moto_dying_at_start_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        with pytest.raises(sandbox.SandboxError) as caught:
            sandbox.start_server(tmp_path / "state", port=port)
    message = str(caught.value)
    assert f"exited while starting on 127.0.0.1:{port}" in message
    assert str(tmp_path / "state" / "moto.log") in message
    assert "in use" in message  # moto's own words, from the log tail
    assert not (tmp_path / "state" / "sandbox.json").exists()


def test_a_server_that_never_answers_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    real_spawn = process.spawn_detached

    def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
        pid = real_spawn(argv, log_path, env)
        started.append(pid)
        return pid

    monkeypatch.setattr(process, "spawn_detached", spawn)
    monkeypatch.setattr(sandbox_server, "_answers", lambda endpoint: False)
    with pytest.raises(sandbox.SandboxError, match=r"did not answer .* within 1 s"):
        sandbox.start_server(tmp_path / "state", timeout=1)
    assert started and not _running(started[0])


def test_missing_moto_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sandbox_server._find_spec
    monkeypatch.setattr(
        sandbox_server, "_find_spec", lambda name: None if name == "moto" else real(name)
    )
    with pytest.raises(ToolMissingError, match=r"pip install 'tfrun\[sandbox\]'"):
        sandbox.start_server(tmp_path / "state")


def test_up_outside_a_live_root_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tfrun\.hcl"):
        sandbox.up(tmp_path)


def test_tfrun_imports_without_moto() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('moto', 'boto3', 'botocore'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tfrun.sandbox\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# ---------------------------------------------------------------------------------------------
# The harness itself


def test_tests_do_not_see_the_real_home_or_ci() -> None:
    assert Path.home() != Path("/root") and "home" in Path.home().name
    for name in ("CI", "GITLAB_CI", "GITHUB_ACTIONS", "TFRUN_AWS_ENDPOINT", "AWS_PROFILE"):
        assert name not in os.environ


def test_state_backend_is_fresh_and_readable(state_backend: StateBackend) -> None:
    assert state_backend.object_keys() == []
    assert state_backend.lock_items() == []
    state_backend.s3().put_object(Bucket=state_backend.bucket, Key="a/b.tfstate", Body=b"{}")
    assert state_backend.object_keys() == ["a/b.tfstate"]
    assert state_backend.read_json("a/b.tfstate") == {}
    assert len(state_backend.versions("a/b.tfstate")) == 1
    assert f'bucket = "{state_backend.bucket}"' in state_backend.root_hcl()


def test_make_repo_builds_a_live_repository(make_repo: Callable[..., LiveRepo]) -> None:
    repo = make_repo(
        {
            "live/tfrun.hcl": root_hcl(),
            "live/prod-eu-west-1/network/main.tf": """
                resource "null_resource" "x" {}
            """,
        },
        git=True,
    )
    assert repo.live == repo.top / "live"
    assert repo.path("prod-eu-west-1/network/main.tf").read_text().startswith("resource")
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo.top, capture_output=True, text=True)
    assert "initial" in log.stdout


def test_find_provider_mirror(tmp_path: Path) -> None:
    mirror = write_tree(
        tmp_path / "mirror",
        {"registry.terraform.io/hashicorp/aws/5.1.0/linux_amd64/terraform-provider-aws_v5": ""},
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_provider_mirror({}, [empty, mirror]) == mirror
    assert find_provider_mirror({PROVIDER_MIRROR_VARIABLE: str(mirror)}, [empty]) == mirror
    # A named mirror without aws is an error to report, not a reason to look elsewhere.
    assert find_provider_mirror({PROVIDER_MIRROR_VARIABLE: str(empty)}, [mirror]) is None


def test_cli_config_text() -> None:
    text = cli_config_text(Path("/opt/mirror"), Path("/tmp/cache"))
    assert 'path    = "/opt/mirror"' in text
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'plugin_cache_dir = "/tmp/cache"' in text


def test_the_harness_finds_terraform_and_the_mirror(
    terraform_cli_config: Path, provider_mirror: Path, tf_env: dict[str, str]
) -> None:
    assert (provider_mirror / "registry.terraform.io/hashicorp/aws").is_dir()
    assert tf_env["TF_CLI_CONFIG_FILE"] == str(terraform_cli_config)
    assert os.environ["TFRUN_AWS_ENDPOINT"] == tf_env["TFRUN_AWS_ENDPOINT"]
    assert str(provider_mirror) in terraform_cli_config.read_text()


# ---------------------------------------------------------------------------------------------
# Real terraform against the sandbox, configured by hand: the settings the generator needs.

_HAND_WRITTEN_STACK = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "~> 5.0" }}
  }}
  backend "s3" {{
    bucket         = "{bucket}"
    key            = "prod/eu-west-1/demo.tfstate"
    region         = "{region}"
    dynamodb_table = "{table}"
    encrypt        = true
    profile        = "prod"
    use_path_style = true
    endpoints = {{ s3 = "{endpoint}", dynamodb = "{endpoint}", sts = "{endpoint}" }}
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
  }}
}}

provider "aws" {{
  region                      = "{region}"
  profile                     = "prod"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    s3  = "{endpoint}"
    sts = "{endpoint}"
    ssm = "{endpoint}"
  }}
}}

resource "aws_ssm_parameter" "demo" {{
  name  = "/demo/{bucket}"
  type  = "String"
  value = "hello"
}}

output "name" {{ value = aws_ssm_parameter.demo.name }}
"""


@pytest.mark.slow
def test_terraform_applies_against_the_sandbox(
    tmp_path: Path, tf_env: dict[str, str], terraform_bin: str, state_backend: StateBackend
) -> None:
    stack = write_tree(
        tmp_path / "stack",
        {
            "main.tf": _HAND_WRITTEN_STACK.format(
                bucket=state_backend.bucket,
                table=state_backend.lock_table,
                region=state_backend.region,
                endpoint=tf_env["TFRUN_AWS_ENDPOINT"],
            )
        },
    )

    def terraform(*args: str) -> None:
        done = subprocess.run(
            [terraform_bin, *args], cwd=stack, env=tf_env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"terraform {args[0]}:\n{done.stdout}\n{done.stderr}"

    terraform("init", "-no-color")
    terraform("apply", "-auto-approve", "-no-color")

    key = "prod/eu-west-1/demo.tfstate"
    assert state_backend.object_keys() == [key]
    state = state_backend.read_json(key)
    assert state["outputs"]["name"]["value"] == f"/demo/{state_backend.bucket}"
    lock_ids = [item["LockID"] for item in state_backend.lock_items()]
    assert lock_ids == [f"{state_backend.bucket}/{key}-md5"]  # the digest; the lock is gone


def test_sandbox_commands_through_the_cli(live_root: Path) -> None:
    up = run_cli(["sandbox", "up"], cwd=live_root).assert_success()
    assert "127.0.0.1" in up.output
    box = sandbox.current(live_root)
    assert box is not None
    run_cli(["sandbox", "status"], cwd=live_root).assert_success()
    run_cli(["sandbox", "down"], cwd=live_root).assert_success()
    assert sandbox.current(live_root) is None
    assert not _running(box.pid)
    run_cli(["sandbox", "status"], cwd=live_root).assert_exit(1)


def test_env_exports_the_provider_mirrors_cli_config(live_root: Path, tmp_path: Path) -> None:
    """`eval "$(tfrun sandbox env)"`: terraform run directly installs from the mirror too."""
    mirror = write_tree(
        tmp_path / "mirror",
        {"registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws": ""},
    )
    sandbox.up(live_root)
    env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    env[PROVIDER_MIRROR_VARIABLE] = str(mirror)
    exports = run_cli(["sandbox", "env"], live_root, env).assert_success().stdout
    config = live_root.resolve() / ".tfrun" / "terraform-mirror.tfrc"
    assert f"export TF_CLI_CONFIG_FILE={config}" in exports.splitlines()
    assert str(mirror) in config.read_text(encoding="utf-8")
    without = run_cli(["sandbox", "env"], live_root, {**env, PROVIDER_MIRROR_VARIABLE: ""})
    assert "TF_CLI_CONFIG_FILE" not in without.assert_success().stdout
