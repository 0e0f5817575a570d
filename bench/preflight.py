"""The identity preflight on examples/live (7 stacks, 3 environments) against a local moto
server: what checking every identity a `run-all` needs adds before terraform starts, with no
cache (cold) and with the 15-minute cache a laptop's loop of plans hits (cached).

    python bench/preflight.py [--repeat 5]

Two shapes of the same repository: the examples as they are (one profile per environment),
and with the role chain (`auth { role_name, laptop_profile }` and a state role), where each
identity is an AssumeRole then a GetCallerIdentity. The figures are medians of `--repeat`
in-process calls of `auth.preflight`, which is what `tfrun run-all` calls; the reference is
one `terraform version` start, the cheapest thing terraform does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfrun import auth, sandbox
from tfrun.discovery import Repository

REPO = Path(__file__).resolve().parents[1]
ROLE_CHAIN = """
auth {
  role_name      = "TerraformAdmin"
  laptop_profile = "staging"
}
"""


def median_s(repeat: int, call: object) -> float:
    assert callable(call)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(live: Path, box: sandbox.Sandbox, repeat: int) -> tuple[int, float, float]:
    environ = {**box.environ(), "AWS_DEFAULT_REGION": "eu-west-1"}
    repo = Repository(live)
    needed = auth.identities(repo.stacks(), environ)
    cache = live / auth.CACHE_FILE

    def cold() -> None:
        cache.unlink(missing_ok=True)
        auth.preflight(live, needed, box.endpoint, environ)

    def cached() -> None:
        auth.preflight(live, needed, box.endpoint, environ)

    cold_s = median_s(repeat, cold)
    cached_s = median_s(repeat, cached)
    return len(needed), cold_s, cached_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tfrun-bench-"))
    box = sandbox.start_server(work / "moto")
    try:
        plain = work / "plain"
        shutil.copytree(REPO / "examples", plain)
        chain = work / "chain"
        shutil.copytree(REPO / "examples", chain)
        root = chain / "live" / "tfrun.hcl"
        text = root.read_text().replace(
            "  encrypt        = true\n",
            '  encrypt        = true\n  role_arn       = "arn:aws:iam::111111111111:role/State"\n',
        )
        root.write_text(text + ROLE_CHAIN)
        sandbox.provision(box, "acme-tfstate", "eu-west-1", None, ["prod", "staging", "shared"])
        started = time.perf_counter()
        subprocess.run(["terraform", "version"], check=True, capture_output=True)
        terraform_s = time.perf_counter() - started
        print(f"one `terraform version`: {terraform_s * 1000:.0f} ms")
        code = "import time; t = time.perf_counter(); import boto3; print(time.perf_counter() - t)"
        imported = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        print(f"importing boto3 (once per cold command, not when cached): "
              f"{float(imported.stdout) * 1000:.0f} ms")  # fmt: skip
        for name, live in (("profiles", plain / "live"), ("role chain", chain / "live")):
            count, cold_s, cached_s = measure(live, box, args.repeat)
            print(
                f"{name:10}: {count} identities; cold {cold_s * 1000:.0f} ms "
                f"({cold_s / terraform_s:.1f}x one terraform start), "
                f"cached {cached_s * 1000:.1f} ms ({cached_s / terraform_s:.2f}x)"
            )
    finally:
        sandbox.stop(box)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
