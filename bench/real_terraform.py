"""Real terraform against the sandbox: `tfrun run-all plan` over examples/live vs a plain
sequential loop of `terraform init && terraform plan` in each stack, a warm second run-all plan,
and the disk each stack's init adds.

    python bench/real_terraform.py

Everything is measured in this one run on this machine; the figures printed are ratios.
The stacks are applied once first (not timed) so that every remote-state read has a state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("TFRUN_PROVIDER_MIRROR", "/opt/tf-plugins"))


def tfrun(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "tfrun", *args], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def du(path: Path) -> int:
    """Bytes in files under path, not following links (the provider is a link into the cache)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = Path(dirpath) / name
            if not full.is_symlink():
                total += full.stat().st_size
    return total


def clear_inits(live: Path) -> None:
    for dot in live.rglob(".terraform"):
        shutil.rmtree(dot)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tfrun-bench-"))
    shutil.copytree(REPO / "examples", work / "examples")
    live = work / "examples" / "live"
    rc = work / "terraformrc"
    rc.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(rc), TF_PLUGIN_CACHE_DIR=str(work / "cache"),
               PYTHONPATH=str(REPO), CI="true")  # fmt: skip
    # CI=true: prod is protected, and applies outside CI ask for the environment's name.
    (work / "cache").mkdir()
    tfrun(["sandbox", "up"], live, env)
    try:
        tfrun(["run-all", "apply", "--yes"], live, env)
        graph = subprocess.run(
            [sys.executable, "-m", "tfrun", "graph", "--format", "json"],
            cwd=live, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        stacks = json.loads(graph.stdout)["stacks"]
        order = [live / s["path"] for s in stacks]
        plain_env = dict(env)
        plain_env.update(_sandbox_environ(live))

        clear_inits(live)
        took: dict[str, float] = {}
        for entry, stack in zip(stacks, order, strict=True):
            began = time.perf_counter()
            for argv in (["init", "-input=false", "-reconfigure"], ["plan", "-input=false"]):
                subprocess.run(["terraform", *argv], cwd=stack, env=plain_env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            took[entry["path"]] = time.perf_counter() - began
        sequential = sum(took.values())
        # No schedule beats the longest chain of dependent stacks, nor (terraform with the aws
        # provider being CPU-bound here) the total work spread over every core.
        finish: dict[str, float] = {}
        for entry in stacks:
            ready = max((finish[d] for d in entry["dependencies"]), default=0.0)
            finish[entry["path"]] = ready + took[entry["path"]]
        bound = max(max(finish.values()), sequential / (os.cpu_count() or 1))

        clear_inits(live)
        start = time.perf_counter()
        tfrun(["run-all", "plan"], live, env)
        cold = time.perf_counter() - start
        disk = [du(stack / ".terraform") for stack in order]

        start = time.perf_counter()
        tfrun(["run-all", "plan"], live, env)
        warm = time.perf_counter() - start
    finally:
        tfrun(["sandbox", "down"], live, env)
        shutil.rmtree(work, ignore_errors=True)

    provider = sum(p.stat().st_size for p in MIRROR.rglob("terraform-provider-aws*"))
    print(f"stacks: {len(order)}, cores: {os.cpu_count()}")
    print(f"sequential init+plan loop: {sequential:6.1f} s")
    print(f"lower bound (critical path, work / cores): {bound:6.1f} s "
          f"= {bound / sequential:.2f} of the loop")  # fmt: skip
    print(f"tfrun run-all plan (cold): {cold:6.1f} s   ratio vs loop {cold / sequential:.2f} "
          f"(target <= 0.5), vs lower bound {cold / bound:.2f}")  # fmt: skip
    print(f"tfrun run-all plan (warm): {warm:6.1f} s   ratio vs cold {warm / cold:.2f}")
    print(f"disk per stack after init: max {max(disk) / 1024:.0f} KiB, mean "
          f"{sum(disk) / len(disk) / 1024:.0f} KiB (target < 1024 KiB; provider is "
          f"{provider / 2**20:.0f} MiB, shared)")  # fmt: skip


def _sandbox_environ(live: Path) -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from tfrun import sandbox

    running = sandbox.current(live)
    assert running is not None, "the sandbox is not running"
    return running.environ()


if __name__ == "__main__":
    main()
