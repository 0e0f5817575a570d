"""The credentials that reach the state: one session, made in one place, and clients from it
for AWS or for a local endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tfrun.errors import ConfigError
from tfrun.state_store.model import ClientFactory

if TYPE_CHECKING:
    from tfrun.config import Config


def state_session(config: Config) -> Any:
    """A boto3 session with the state's credentials: `state.profile` when it is set, else the
    ambient ones (environment, shared config, SSO, instance or web identity)."""
    # boto3 costs a third of a second to import: only the commands that talk to AWS pay it.
    import boto3
    from botocore.exceptions import ProfileNotFound

    state = config.state
    if state.role_arn:
        # Until the session assumes it, the profile's own account would get the bucket.
        raise ConfigError(
            f"state.role_arn in tfrun.hcl is '{state.role_arn}', and bootstrap cannot assume "
            "the state account's role yet: it would make the bucket and table in the account "
            "of the credentials at hand. Until it can, run it with state.role_arn taken out for "
            "that run and credentials of the state account itself (state.profile or AWS_PROFILE)."
        )
    try:
        return boto3.session.Session(profile_name=state.profile or None, region_name=state.region)
    except ProfileNotFound:
        raise ConfigError(
            f"state.profile in tfrun.hcl is '{state.profile}', and the AWS config defines no "
            "profile of that name (~/.aws/config, or the file AWS_CONFIG_FILE names). Add it "
            "(aws configure sso --profile NAME), or correct state.profile."
        ) from None


def describe_credentials(config: Config) -> str:
    """Whose credentials `state_session` uses, as messages name them."""
    if config.state.profile:
        return f"the profile '{config.state.profile}'"
    return "the ambient AWS credentials"


def clients(session: Any, endpoint: str | None) -> ClientFactory:
    """Clients from `session`, sent to `endpoint` when one is named (a local AWS)."""
    from botocore.config import Config as BotoConfig

    options: dict[str, Any] = {
        "retries": {"max_attempts": 4, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    if endpoint:
        # Local endpoints answer on one host name; and a proxy from the environment must not
        # see loopback traffic (an empty mapping, not None).
        options.update(s3={"addressing_style": "path"}, proxies={})

    def client(service: str, region: str) -> Any:
        return session.client(
            service, region_name=region, endpoint_url=endpoint or None, config=BotoConfig(**options)
        )

    return client
