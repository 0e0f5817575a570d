"""`tfrun whoami [PATH]`: who tfrun is in each environment of the stacks under PATH, asked
of STS through the role chain (never from the cache: this is the command that checks)."""

from __future__ import annotations

import os
from pathlib import Path

from tfrun import auth, terraform, ui
from tfrun.errors import ExitCode
from tfrun.workspace import Workspace


def whoami(path: Path) -> int:
    workspace = Workspace.load(path)
    stacks = workspace.under(path)
    env, endpoint = terraform.aws_environment(workspace.repo)
    rows: list[tuple[str, ...]] = []
    failed = False
    for identity in auth.identities(stacks, os.environ):
        try:
            [checked] = auth.preflight(workspace.root, [identity], endpoint, env, use_cache=False)
            arn, account, status = checked.arn, checked.account, "ok"
        except auth.AuthError as exc:
            arn, account, status, failed = "", "", str(exc), True
        rows.append(
            (
                ", ".join(identity.envs),
                identity.profile or "(ambient)",
                identity.role_arn or "",
                account,
                arn,
                status,
            )
        )
    ui.table(("environment", "profile", "role", "account", "ARN", "status"), rows)
    return int(ExitCode.STACK_FAILED if failed else ExitCode.OK)
