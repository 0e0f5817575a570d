"""`tfrun bootstrap [PATH] [--check]`: the state bucket and lock table the root config names,
made (or, with --check, compared) before the first stack runs.

One line per resource and setting: created, set, already so, skipped, or differs and how.
Exit 0 when everything is as it should be at the end; 1 when something differs (with --check,
anything; without, what bootstrap will not change: a bucket in another region, a lock table
with another key); 4 for a config error. Nothing is ever deleted or loosened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfrun import sandbox, state_store, terraform, ui
from tfrun.config import ROOT_FILE, Config, build, load_file
from tfrun.discovery import Repository, find_root
from tfrun.errors import ExitCode
from tfrun.state_store import Item, Layout, StateStoreError, Status

# botocore's names for a request that never got an answer.
_UNREACHABLE = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
)


def root_config(root: Path) -> Config:
    """The root tfrun.hcl alone: bootstrap comes before the first stack."""
    path = root / ROOT_FILE
    return build([(path, load_file(path, is_root=True, is_stack=False))], path)


def _target(root: Path, config: Config) -> tuple[state_store.ClientFactory, str, bool]:
    """The client factory, whose credentials and where, and whether it is plain HTTP."""
    repo = Repository(root)
    endpoint = terraform.local_endpoint(repo)  # a dead sandbox stops here, as for any command
    record = sandbox.lookup(root)
    box = record.box if record is not None and record.running else None
    if endpoint and box is not None and endpoint.rstrip("/") == box.endpoint:
        return box.client, f"the sandbox at {box.endpoint}", True
    session: Any = state_store.state_session(config)
    who = state_store.describe_credentials(config)
    if endpoint:
        who = f"{who} at {endpoint}"
    return state_store.clients(session, endpoint), who, (endpoint or "").startswith("http://")


def run(path: Path, *, check: bool) -> int:
    root = find_root(path)
    config = root_config(root)
    state = config.state
    assert state.bucket is not None and state.region is not None  # build checks
    client, who, plain_http = _target(root, config)
    layout = Layout(
        bucket=state.bucket,
        region=state.region,
        lock_table=state.dynamodb_table,
        kms_key_id=state.kms_key_id,
        tls_policy=not plain_http,
    )
    ui.info(f"{'checking' if check else 'bootstrapping'} the state of {root} with {who}.")
    items: list[Item] = []
    try:
        for item in state_store.ensure(client, layout, check=check):
            ui.out(str(item))
            items.append(item)
    except StateStoreError as exc:
        raise StateStoreError(exc.what, exc.cause, _hint(exc.cause, who)) from None
    return _summary(items, check=check)


def _hint(cause: str, who: str) -> str:
    if cause.startswith(_UNREACHABLE):
        return f"tfrun used {who}, and nothing answered: check the endpoint and the network."
    return (
        f"tfrun used {who}: check that they are current (for SSO: aws sso login) and may read "
        "and change the state bucket and lock table (docs/auth.md, Bootstrap)."
    )


def _summary(items: list[Item], *, check: bool) -> int:
    differs = [item.name for item in items if item.status is Status.DIFFERS]
    if not differs:
        changed = sum(item.status in (Status.CREATED, Status.SET) for item in items)
        if check:
            ui.info("everything is as it should be.")
        else:
            ui.info(f"the state is ready ({changed} of {len(items)} changed).")
        return int(ExitCode.OK)
    listed = "; ".join(differs)
    if check:
        ui.error(
            f"not as tfrun wants it: {listed}. Nothing was changed; 'tfrun bootstrap' creates "
            "and sets what it can (it never deletes or loosens anything)."
        )
    else:
        ui.error(
            f"{listed}: bootstrap cannot change {'this' if len(differs) == 1 else 'these'} "
            "(it never deletes or replaces a bucket or table); fix the config as each line says."
        )
    return int(ExitCode.STACK_FAILED)
