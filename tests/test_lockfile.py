"""S3-native state locking (`state.use_lockfile`) with real terraform against moto, which
implements S3's conditional writes: two checkouts of one stack (two machines, so tfrun's own
per-checkout stack lock has no say) apply at once, and the second waits for terraform's
-lock-timeout and fails, while the first holds `<key>.tflock` in the bucket."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import StateBackend, cli_environ, root_hcl, run_cli, write_tree

pytestmark = pytest.mark.slow

PINS = 'terraform_version = ">= 1.10"\nproviders { aws = "~> 5.0" }'
STACK = "staging-eu-west-1/app"
KEY = "staging/eu-west-1/app.tfstate"
LOCK_TIMEOUT_S = 3


def checkout(top: Path, state_backend: StateBackend, release: Path, *, table: bool) -> Path:
    """One machine's copy of the repository; its apply holds the lock until `release` exists."""
    root = root_hcl(state_backend.bucket, state_backend.region, None, extra=PINS)
    locks = f'  dynamodb_table = "{state_backend.lock_table}"\n' if table else ""
    root = root.replace("  encrypt = true\n", f"  encrypt = true\n  use_lockfile = true\n{locks}")
    main = (
        'resource "terraform_data" "held" {\n'
        '  provisioner "local-exec" {\n'
        f"    command = \"for i in $(seq 1 1500); do [ -f '{release}' ] && exit 0; "
        'sleep 0.2; done; exit 1"\n'
        "  }\n"
        "}\n"
    )
    write_tree(top, {"live/tfrun.hcl": root, f"live/{STACK}/main.tf": main})
    return top / "live" / STACK


@pytest.mark.parametrize("table", [False, True], ids=["use_lockfile alone", "beside dynamodb"])
def test_a_second_apply_waits_for_the_s3_lock_then_fails(
    tmp_path: Path, state_backend: StateBackend, tf_env: dict[str, str], table: bool
) -> None:
    release = tmp_path / "release"
    first = checkout(tmp_path / "a", state_backend, release, table=table)
    second = checkout(tmp_path / "b", state_backend, release, table=table)
    log = tmp_path / "first.log"
    with log.open("wb") as output:
        holder = subprocess.Popen(
            [sys.executable, "-m", "tfrun", "apply", "--yes", "-no-color"],
            cwd=first,
            env=cli_environ(tf_env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while f"{KEY}.tflock" not in state_backend.object_keys():
            assert holder.poll() is None, f"the first apply ended early:\n{log.read_text()}"
            assert time.monotonic() < deadline, "the first apply never took the lock"
            time.sleep(0.2)
        text = " ".join((first / "backend.tf").read_text().split())  # terraform fmt aligns
        assert "use_lockfile = true" in text and ("dynamodb_table" in text) == table
        lock = state_backend.read_json(f"{KEY}.tflock")
        assert lock["Operation"] == "OperationTypeApply" and lock["Path"].endswith(KEY)
        held = {item["LockID"] for item in state_backend.lock_items()}
        assert (f"{state_backend.bucket}/{KEY}" in held) == table

        started = time.monotonic()
        waited = run_cli(
            ["apply", "--yes", "-no-color", f"-lock-timeout={LOCK_TIMEOUT_S}s"], second, tf_env
        )
        assert waited.exit_code != 0, waited
        assert "Error acquiring the state lock" in waited.output, waited
        assert lock["ID"] in waited.output  # terraform names who holds it
        assert time.monotonic() - started >= LOCK_TIMEOUT_S
    finally:
        release.touch()
        holder.wait(timeout=300)
    assert holder.returncode == 0, log.read_text()

    # Released: the lock object is gone, and the other machine now gets the lock.
    assert f"{KEY}.tflock" not in state_backend.object_keys()
    assert KEY in state_backend.object_keys()
    run_cli(["apply", "--yes", "-no-color", "-lock-timeout=30s"], second, tf_env).assert_success()
    assert f"{KEY}.tflock" not in state_backend.object_keys()
    items = state_backend.lock_items()
    if table:
        # Beside the table, both locks were taken and released; the table keeps the digest.
        assert [item["LockID"] for item in items] == [f"{state_backend.bucket}/{KEY}-md5"]
    else:
        assert items == []  # no DynamoDB item was ever written
    assert state_backend.read_json(KEY)["version"] == 4
