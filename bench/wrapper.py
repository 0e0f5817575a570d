"""What tfrun adds to one terraform command in one initialised stack: `tfrun output -raw x`
against `terraform output -raw x`, and `tfrun plan` against `terraform plan` (aws provider),
in the same stack, against a local moto server. Paired runs, alternating, so that the
machine's noise falls on both alike; the medians, their ratio and the time tfrun adds.

Each tfrun row is measured twice: as a person meets it from the second command on (the short
way, tfrun/express.py: the full run before prepared the same command, and nothing changed), and
as the full run (`TFRUN_EXPRESS=0`: what the first command after a change costs).

    python bench/wrapper.py [--repeat 15]

Targets (issue 12): output at most 1.10x and under 0.1 s added; plan at most 1.02x.
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

from tfrun import sandbox

MIRROR = Path(os.environ.get("TFRUN_PROVIDER_MIRROR", "/opt/tf-plugins"))
ROOT = """
repo = "bench"
state {
  bucket = "bench-tfstate"
  region = "eu-west-1"
  use_lockfile = true
}
environments {
  staging = { account_id = "333333333333", profile = "staging" }
}
providers { aws = "~> 5.0" }
"""
OUTPUT_STACK = 'resource "terraform_data" "a" { input = "x" }\noutput "x" { value = "hello" }\n'
PLAN_STACK = """
data "aws_caller_identity" "me" {}
resource "aws_s3_bucket" "b" { bucket = "bench-wrapper-bucket" }
output "arn" { value = data.aws_caller_identity.me.arn }
"""


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def paired(
    name: str, tf: list[str], ours: list[str], cwd: Path, env: dict[str, str], repeat: int
) -> None:
    timed(ours, cwd, env)  # the short way's record written, or not, before the timing
    tf_times, our_times = [], []
    for _ in range(repeat):
        tf_times.append(timed(tf, cwd, env))
        our_times.append(timed(ours, cwd, env))
    t, o = statistics.median(tf_times), statistics.median(our_times)
    print(
        f"{name:24} terraform {t * 1000:6.0f} ms  tfrun {o * 1000:6.0f} ms  "
        f"ratio {o / t:.2f}x  added {(o - t) * 1000:+.0f} ms  "
        f"(tfrun min-max {min(our_times) * 1000:.0f}-{max(our_times) * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tfrun-bench-"))
    box = sandbox.start_server(work / "moto")
    try:
        live = work / "live"
        for rel, text in (
            ("tfrun.hcl", ROOT),
            ("staging-eu-west-1/out/main.tf", OUTPUT_STACK),
            ("staging-eu-west-1/plan/main.tf", PLAN_STACK),
        ):
            (live / rel).parent.mkdir(parents=True, exist_ok=True)
            (live / rel).write_text(text)
        sandbox.provision(box, "bench-tfstate", "eu-west-1", None, ["staging"])
        (work / "terraformrc").write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path = "{MIRROR}"\n'
            '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
        )
        env = {
            **os.environ,
            **box.environ(),
            "TF_CLI_CONFIG_FILE": str(work / "terraformrc"),
            "TF_PLUGIN_CACHE_DIR": str(work / "plugins"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        (work / "plugins").mkdir()
        tfrun = [sys.executable, "-m", "tfrun"]
        out, plan = live / "staging-eu-west-1/out", live / "staging-eu-west-1/plan"
        subprocess.run([*tfrun, "apply", "--yes"], cwd=out, env=env, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run([*tfrun, "init"], cwd=plan, env=env, check=True, capture_output=True)
        timed([*tfrun, "output", "-raw", "x"], out, env)  # caches warm, bytecode written
        timed([*tfrun, "plan", "-input=false"], plan, env)
        print(f"{args.repeat} paired runs each (plan: a third as many), medians")
        full = {**env, "TFRUN_EXPRESS": "0"}
        for name, environ in (("", env), (", full run", full)):
            paired(f"output -raw x{name}", ["terraform", "output", "-raw", "x"],
                   [*tfrun, "output", "-raw", "x"], out, environ, args.repeat)  # fmt: skip
            paired(f"plan{name}", ["terraform", "plan", "-input=false"],
                   [*tfrun, "plan", "-input=false"], plan, environ,
                   max(3, args.repeat // 3))  # fmt: skip
    finally:
        sandbox.stop(box)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
