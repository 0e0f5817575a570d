"""The role-assumption chain (docs/auth.md): who terraform is in each stack, and a check of
every identity a run needs before any terraform starts.

The chain is in config, reviewable in git: a source identity (a laptop's SSO profile, or a CI
job's ambient credentials, e.g. OIDC web identity) assumes each environment's role
(`environments.X.role_arn`, or `arn:aws:iam::<account_id>:role/<auth.role_name>`), and the
state account's role (`state.role_arn`) for the backend and remote-state reads. An environment
with no role keeps today's model: its `profile`, as it is.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tfrun.discovery import Stack
from tfrun.errors import TfrunError
from tfrun.files import write_atomically
from tfrun.safety import detect_ci

# AWS's limits on a role session's name: CloudTrail shows it, so it says who and where.
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]")
SESSION_NAME_MAX = 64
CACHE_FILE = Path(".tfrun") / "cache" / "identities.json"
# A checked identity is trusted this long: a laptop's loop of plans is not slowed, and an
# expired login is found within minutes.
CACHE_TTL_S = 15 * 60


class AuthError(TfrunError):
    """An identity the run needs cannot be had: a login expired, a role cannot be assumed,
    an account is not the one the config names."""


def in_ci(environ: Mapping[str, str]) -> bool:
    return detect_ci(environ) is not None


def who(environ: Mapping[str, str]) -> str:
    """The person, or the CI job, for session names."""
    if environ.get("GITLAB_CI"):
        return f"gitlab-job-{environ.get('CI_JOB_ID', 'unknown')}"
    if environ.get("GITHUB_ACTIONS"):
        return f"github-run-{environ.get('GITHUB_RUN_ID', 'unknown')}"
    if in_ci(environ):
        return "ci"
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def session_name(who_: str, stack: Stack) -> str:
    """`alice@staging.network` within AWS's 64 characters of [\\w+=,.@-]."""
    name = _SESSION_CHARS.sub("-", f"{who_}@{stack.env}.{stack.name.replace('/', '.')}")
    return name[:SESSION_NAME_MAX]


def state_session_name(stack: Stack) -> str:
    """The backend's: the same for everyone, or each person's first init would see a changed
    backend. Who read the state is in the provider's sessions."""
    return _SESSION_CHARS.sub("-", f"tfrun-state@{stack.env}.{stack.name}")[:SESSION_NAME_MAX]


def role_arn(stack: Stack) -> str | None:
    environment = stack.config.environments.get(stack.env)
    if environment is not None and environment.role_arn:
        return environment.role_arn
    name = stack.config.auth.role_name
    account = stack.account_id
    return f"arn:aws:iam::{account}:role/{name}" if name and account else None


def external_id(stack: Stack) -> str | None:
    environment = stack.config.environments.get(stack.env)
    return environment.external_id if environment is not None else None


def uses_roles(stack: Stack) -> bool:
    return role_arn(stack) is not None or stack.config.state.role_arn is not None


def source_profile(stack: Stack, environ: Mapping[str, str]) -> str | None:
    """The profile terraform starts from: with a role, the laptop's SSO profile (none in CI,
    where the job's own credentials are the source); without one, the environment's."""
    if not uses_roles(stack):
        return stack.profile
    if in_ci(environ):
        return None
    return stack.config.auth.laptop_profile or stack.profile


@dataclass(frozen=True)
class Identity:
    """One identity a run needs: where it starts and the role it assumes."""

    profile: str | None
    role_arn: str | None
    external_id: str | None
    account_id: str | None  # the account the config says it is in
    envs: tuple[str, ...]

    @property
    def key(self) -> str:
        return json.dumps([self.profile, self.role_arn, self.external_id, self.account_id])

    @property
    def described(self) -> str:
        source = f"profile {self.profile}" if self.profile else "the ambient credentials"
        return f"{source} → {self.role_arn}" if self.role_arn else source


@dataclass(frozen=True)
class Checked:
    identity: Identity
    arn: str
    account: str
    cached: bool = False
    checked_at: float = 0.0  # time.time() of the STS answer, cached or not


def valid_until(checked: Sequence[Checked]) -> float:
    """Until when these answers stand without asking STS again (the cache's lifetime)."""
    return min((c.checked_at for c in checked), default=time.time()) + CACHE_TTL_S


def identities(stacks: Iterable[Stack], environ: Mapping[str, str]) -> list[Identity]:
    """Each distinct identity the stacks need, once (their environments named)."""
    found: dict[tuple[str | None, str | None, str | None, str | None], list[str]] = {}
    for stack in stacks:
        ident = (
            source_profile(stack, environ),
            role_arn(stack),
            external_id(stack),
            stack.account_id,
        )
        envs = found.setdefault(ident, [])
        if stack.env not in envs:
            envs.append(stack.env)
        state_role = stack.config.state.role_arn
        if state_role:
            state = (source_profile(stack, environ), state_role, None, None)
            envs = found.setdefault(state, [])
            if "state" not in envs:
                envs.append("state")
    return [Identity(p, r, x, a, tuple(e)) for (p, r, x, a), e in found.items()]


def wanted(stacks: Sequence[Stack]) -> bool:
    """Whether a run checks its identities: `auth.preflight`, else when roles are used."""
    if not stacks:
        return False
    setting = stacks[0].config.auth.preflight
    return setting if setting is not None else any(uses_roles(stack) for stack in stacks)


_LOADER: list[Any] = []


def _session(profile: str | None) -> Any:
    """A boto3 session for one source profile. They share one loader: each would otherwise
    load and parse the same service models again, most of a cold check's time."""
    import boto3  # only when identities are checked: it costs a third of a second to import
    import botocore.session

    core = botocore.session.Session(profile=profile)
    if not _LOADER:
        _LOADER.append(core.get_component("data_loader"))
    core.register_component("data_loader", _LOADER[0])
    return boto3.session.Session(botocore_session=core)


def _client(identity: Identity, endpoint: str | None, environ: Mapping[str, str]) -> Any:
    session = _session(identity.profile)
    sts = session.client("sts", endpoint_url=endpoint)
    if identity.role_arn is None:
        return sts
    request: dict[str, Any] = {
        "RoleArn": identity.role_arn,
        "RoleSessionName": _SESSION_CHARS.sub("-", f"{who(environ)}@tfrun-preflight")[:64],
    }
    if identity.external_id:
        request["ExternalId"] = identity.external_id
    credentials = sts.assume_role(**request)["Credentials"]
    return session.client(
        "sts",
        endpoint_url=endpoint,
        region_name=session.region_name or "us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def check_one(identity: Identity, endpoint: str | None, environ: Mapping[str, str]) -> Checked:
    """STS GetCallerIdentity through the chain; AuthError with the fix when it fails."""
    try:
        answer = _client(identity, endpoint, environ).get_caller_identity()
    except Exception as exc:
        raise AuthError(_explain(identity, exc, environ)) from None
    account = str(answer["Account"])
    # A local endpoint's base credentials are in no real account; a role's ARN names one.
    compare = identity.role_arn is not None or endpoint is None
    if compare and identity.account_id and account != identity.account_id:
        raise AuthError(
            f"{', '.join(identity.envs)}: {identity.described} is {answer['Arn']}, in account "
            f"{account}, but tfrun.hcl says the environment's account is "
            f"{identity.account_id}. Nothing ran. Log in to the right account, or correct "
            "account_id (or the role) in tfrun.hcl."
        )
    return Checked(identity, str(answer["Arn"]), account)


def _explain(identity: Identity, exc: Exception, environ: Mapping[str, str]) -> str:
    name = type(exc).__name__
    where = ", ".join(identity.envs)
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    token_file = environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    web_identity = identity.profile is None and token_file and environ.get("AWS_ROLE_ARN")
    if web_identity and (isinstance(exc, OSError) or "WebIdentity" in code or "Token" in code):
        return (
            f"{where}: the CI job's web identity (AWS_ROLE_ARN {environ['AWS_ROLE_ARN']}, token "
            f"file {token_file}) gave no credentials ({name}: {exc}). Nothing ran. The job must "
            "write its OIDC token there (the pipeline 'tfrun ci gitlab' writes does, from "
            "id_tokens), and that role's trust policy must accept the token (docs/auth.md)."
        )
    if name in ("SSOTokenLoadError", "UnauthorizedSSOTokenError", "TokenRetrievalError"):
        login = _sso_login(identity.profile)
        return (
            f"{where}: the AWS SSO login of profile {identity.profile} is missing or has "
            f"expired ({exc}). Nothing ran. Log in again with: {login}"
        )
    if name in ("ProfileNotFound", "NoCredentialsError", "PartialCredentialsError"):
        return (
            f"{where}: tfrun found no credentials for {identity.described} ({exc}). Nothing ran. "
            "Configure the profile in ~/.aws/config (docs/auth.md), or give the CI job "
            "credentials (OIDC web identity)."
        )
    if identity.role_arn and code in ("AccessDenied", "AccessDeniedException"):
        source = f"profile {identity.profile}" if identity.profile else "the ambient credentials"
        return (
            f"{where}: {source} may not assume the role {identity.role_arn} ({exc}). Nothing "
            "ran. The role's trust policy must allow that identity (docs/auth.md)."
        )
    return f"{where}: checking {identity.described} failed ({name}: {exc}). Nothing ran."


def _sso_login(profile: str | None) -> str:
    """The command that logs in again: by SSO session when the profile names one."""
    try:
        import botocore.session

        config = botocore.session.Session(profile=profile).get_scoped_config()
    except Exception:
        config = {}
    session = config.get("sso_session")
    if session:
        return f"aws sso login --sso-session {session}"
    return f"aws sso login --profile {profile}" if profile else "aws sso login"


@contextmanager
def _environ(environ: Mapping[str, str]) -> Iterator[None]:
    """boto3 reads its profiles and credentials from os.environ: terraform's environment
    (a sandbox's AWS config, for one) while the identities are checked."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _load_cache(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ambient_source(environ: Mapping[str, str]) -> str:
    """What identities without a profile start from, so that exporting other credentials
    is not answered from the cache (hashed: the cache file need not hold key ids)."""
    names = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
    source = "\0".join(environ.get(name, "") for name in names)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def preflight(
    root: Path,
    wanted_: Sequence[Identity],
    endpoint: str | None,
    environ: Mapping[str, str] = os.environ,
    *,
    use_cache: bool = True,
) -> list[Checked]:
    """Check each identity once, concurrently; raise the first failure's AuthError. Recent
    successes (CACHE_TTL_S) are not asked again, except in CI: a job runs once, from
    credentials of its own."""
    use_cache = use_cache and not in_ci(environ)
    cache = _load_cache(root) if use_cache else {}
    now = time.time()
    scope = f"{endpoint or 'aws'} {_ambient_source(environ)}"
    results: dict[str, Checked] = {}
    todo = []
    for identity in wanted_:
        hit = cache.get(f"{scope} {identity.key}")
        if isinstance(hit, dict) and now - float(hit.get("at", 0)) < CACHE_TTL_S:
            results[identity.key] = Checked(
                identity, hit["arn"], hit["account"], cached=True, checked_at=float(hit["at"])
            )
        else:
            todo.append(identity)
    if todo:
        with _environ(environ), ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            futures = [pool.submit(check_one, i, endpoint, environ) for i in todo]
            errors = []
            for future in futures:
                try:
                    checked = future.result()
                except AuthError as exc:
                    errors.append(exc)
                    continue
                results[checked.identity.key] = replace(checked, checked_at=now)
                cache[f"{scope} {checked.identity.key}"] = {
                    "arn": checked.arn,
                    "account": checked.account,
                    "at": now,
                }
        if use_cache:
            write_atomically(root / CACHE_FILE, json.dumps(cache, indent=1) + "\n", private=True)
        if errors:
            raise errors[0]
    return [results[identity.key] for identity in wanted_]
