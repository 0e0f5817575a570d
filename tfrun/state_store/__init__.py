"""Where terraform's state lives: the S3 bucket and the DynamoDB lock table, made ready (or,
with `check`, compared with what they should be) through any boto3 client factory: the
state's own credentials for `tfrun bootstrap`, the sandbox's for `tfrun sandbox up`.

`ensure` yields one `Item` per resource and setting as it goes, so a caller can show each line
when it is known and an error part-way still leaves what was done on screen. Nothing here
deletes a resource or loosens a setting. `model` holds the shared types, `bucket` and `table`
the two resources, `session` the credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

from tfrun.state_store.bucket import denies_insecure_transport, ensure_bucket, tls_statement
from tfrun.state_store.model import (
    ClientFactory,
    Item,
    Layout,
    StateStoreError,
    Status,
    error_code,
)
from tfrun.state_store.session import clients, describe_credentials, state_session
from tfrun.state_store.table import ensure_lock_table


def ensure(client: ClientFactory, layout: Layout, *, check: bool = False) -> Iterator[Item]:
    """The bucket, then the lock table when the layout has one."""
    yield from ensure_bucket(client, layout, check=check)
    if layout.lock_table:
        yield from ensure_lock_table(client, layout.lock_table, layout.region, check=check)


__all__ = [
    "ClientFactory",
    "Item",
    "Layout",
    "StateStoreError",
    "Status",
    "clients",
    "denies_insecure_transport",
    "describe_credentials",
    "ensure",
    "ensure_bucket",
    "ensure_lock_table",
    "error_code",
    "state_session",
    "tls_statement",
]
