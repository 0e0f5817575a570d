"""GitLab pipelines at monorepo scale: how big `tfrun ci gitlab` makes them, and one run of
hundreds of stacks under gitlab-ci-local with a fake terraform.

    python bench/pipeline.py [--stacks 300] [--wide 120] [--sizes 300,1000,3000]
                             [--concurrency 4] [--no-run]

Builds live repositories of `--stacks` stacks, one of which reads `--wide` others, and prints
for each of `--sizes` stacks (generation only): the jobs of the child pipeline, its YAML size,
the barrier jobs and the most needs of one job (GitLab allows 50), and `tfrun ci gitlab`'s wall
time. Then, unless --no-run, it runs the `--plan-only` pipeline of `--stacks` stacks with
gitlab-ci-local (real tfrun in every job, a shell script as terraform) and prints its wall
time, whether every job passed, and whether the wide stack planned only after all the plans it
waited for through barriers had ended. tests/test_ci_gitlab_local.py proves the same with a
smaller pipeline (and a lowered --needs-limit) on every test run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

MAIN_ROOT = Path(__file__).resolve().parents[1]
S = "staging-eu-west-1"
ROOT_HCL = """state {
  bucket       = "bench-tfstate"
  region       = "eu-west-1"
  use_lockfile = true
}
environments {
  staging = { account_id = "333333333333" }
}
"""
# terraform for the jobs: a plan that saves a file `show -json` describes, nothing else.
FAKE_TERRAFORM = """#!/bin/sh
case "$1" in
  plan)
    for arg in "$@"; do
      case "$arg" in -out=*) echo '{}' > "${arg#-out=}" ;; esac
    done
    exit 0 ;;
  show)
    case " $* " in *" -json "*) echo '{"resource_changes": [], "output_changes": {}}' ;; esac
    exit 0 ;;
  version) echo 'Terraform v1.11.0'; exit 0 ;;
esac
exit 0
"""


def build(top: Path, stacks: int, wide: int) -> None:
    leaves = [f"s{i:04}" for i in range(stacks - 1)]
    live = top / "live"
    live.mkdir(parents=True)
    (live / "tfrun.hcl").write_text(ROOT_HCL, encoding="utf-8")
    for name in leaves:
        folder = live / S / name
        folder.mkdir(parents=True)
        (folder / "main.tf").write_text('output "id" { value = "x" }\n', encoding="utf-8")
    read = leaves[:wide]
    folder = live / S / "wide"
    folder.mkdir()
    (folder / "stack.hcl").write_text(
        "remote_state = {\n" + "".join(f'  {n} = "../{n}"\n' for n in read) + "}\n",
        encoding="utf-8",
    )
    (folder / "main.tf").write_text(
        'output "ids" {\n  value = [\n'
        + "".join(f"    data.terraform_remote_state.{n}.outputs.id,\n" for n in read)
        + "  ]\n}\n",
        encoding="utf-8",
    )
    (live / ".gitignore").write_text(".tfrun/\n.terraform/\n", encoding="utf-8")
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *argv], cwd=top, check=True, capture_output=True)


def environ(fake: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(MAIN_ROOT), env.get("PYTHONPATH")]))
    env["TFRUN_TERRAFORM"] = str(fake)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def generate(top: Path, env: dict[str, str], *extra: str) -> tuple[str, float]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tfrun", "ci", "gitlab", "live", *extra],
        cwd=top,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout, time.perf_counter() - began


def shape(text: str) -> str:
    document = yaml.safe_load(text)
    jobs = {
        name: job for name, job in document.items() if isinstance(job, dict) and "script" in job
    }
    barriers = [name for name in jobs if name.startswith("wait ")]
    most = max(len(job.get("needs", ())) for job in jobs.values())
    return (
        f"{len(jobs)} jobs ({len(barriers)} barriers), {len(text.encode()) / 1e6:.2f} MB of "
        f"YAML, at most {most} needs in one job"
    )


def run_pipeline(top: Path, env: dict[str, str], concurrency: int) -> None:
    executable = shutil.which("gitlab-ci-local")
    if executable is None:
        sys.exit("gitlab-ci-local is not on PATH: run scripts/setup-test-tools.sh")
    text, _ = generate(top, env, "--plan-only")
    (top / "child.yml").write_text(text, encoding="utf-8")
    print(f"  plan-only pipeline: {shape(text)}")
    began = time.perf_counter()
    done = subprocess.run(
        [
            executable,
            "--file", "child.yml",
            "--force-shell-executor",
            "--shell-isolation",
            "--no-artifacts-to-source",
            "--no-color",
            "--max-job-name-padding", "0",
            # Unlimited, hundreds of jobs start at once and starve the machine.
            "--concurrency", str(concurrency),
        ],
        cwd=top,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    wall = time.perf_counter() - began
    output = done.stdout + done.stderr
    jobs = [n for n, j in yaml.safe_load(text).items() if isinstance(j, dict) and "script" in j]
    passed = [job for job in jobs if re.search(rf"PASS\s+{re.escape(job)}\s*$", output, re.M)]
    ends = [m[1] for m in re.finditer(r"^(\S.*?)\s+finished in ", output, re.M)]
    starts = [m[1] for m in re.finditer(r"^(\S.*?)\s+starting shell \(", output, re.M)]
    lines = output.splitlines()

    def at(kind: str, job: str) -> int:
        pattern = "finished in " if kind == "end" else "starting shell ("
        return next(i for i, line in enumerate(lines) if line.startswith(job) and pattern in line)

    wide = f"plan {S}/wide"
    read = [f"plan {S}/s{i:04}" for i in range(int(os.environ.get("BENCH_WIDE", "0")))]
    ordered = wide in starts and all(
        job in ends and at("end", job) < at("start", wide) for job in read
    )
    print(
        f"  gitlab-ci-local: {wall:.0f} s for {len(jobs)} jobs "
        f"({wall / len(jobs):.2f} s a job, {concurrency} at once); exit {done.returncode}; "
        f"{len(passed)}/{len(jobs)} passed; the wide plan started after the {len(read)} plans "
        f"it reads had ended: {'yes' if ordered else 'NO'}"
    )
    summary = re.search(r"(\d+) stacks, \d+ with changes\.", output)
    print(f"  the summary's table: {summary[0] if summary else 'MISSING'}")
    if done.returncode != 0 or len(passed) != len(jobs) or not ordered:
        (top / "gitlab-ci-local.log").write_text(output, encoding="utf-8")
        sys.exit(f"the pipeline did not run as it should; its output is in {top}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=int, default=300)
    parser.add_argument("--wide", type=int, default=120)
    parser.add_argument("--sizes", default="300,1000,3000")
    parser.add_argument("--concurrency", type=int, default=4, help="gitlab-ci-local's jobs at once")
    parser.add_argument("--no-run", action="store_true")
    args = parser.parse_args()
    os.environ["BENCH_WIDE"] = str(args.wide)
    with tempfile.TemporaryDirectory(prefix="tfrun-bench-pipeline-") as temp:
        fake = Path(temp) / "terraform"
        fake.write_text(FAKE_TERRAFORM, encoding="utf-8")
        fake.chmod(0o755)
        env = environ(fake)
        print(f"A stack reading {args.wide} others, beside the rest:")
        for size in [int(n) for n in args.sizes.split(",")]:
            top = Path(temp) / f"size-{size}"
            build(top, size, min(args.wide, size - 1))
            text, wall = generate(top, env)
            print(f"  {size} stacks: {shape(text)}; generated in {wall:.2f} s")
        if not args.no_run:
            top = Path(temp) / "run"
            build(top, args.stacks, args.wide)
            print(f"{args.stacks} stacks under gitlab-ci-local:")
            run_pipeline(top, env, args.concurrency)


if __name__ == "__main__":
    main()
