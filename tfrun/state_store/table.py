"""The DynamoDB lock table: a `LockID` string hash key (what terraform writes), on demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tfrun.state_store.model import ClientFactory, Item, Status, call

HASH_KEY = ("LockID", "S")
BILLING = "PAY_PER_REQUEST"


def ensure_lock_table(
    client: ClientFactory, table: str, region: str, *, check: bool = False
) -> Iterator[Item]:
    """The table and each of its settings, one `Item` each, made so unless `check`."""
    dynamodb = client("dynamodb", region)
    resource = f"lock table {table}"
    described = _describe(dynamodb, table)
    fresh = described is None
    if described is None:
        if check:
            yield Item(resource, "", Status.DIFFERS, f"does not exist (in {region})")
            return
        call(
            f"create the lock table '{table}' in {region}",
            dynamodb.create_table,
            absent=("ResourceInUseException",),  # made meanwhile by another bootstrap
            TableName=table,
            AttributeDefinitions=[{"AttributeName": HASH_KEY[0], "AttributeType": HASH_KEY[1]}],
            KeySchema=[{"AttributeName": HASH_KEY[0], "KeyType": "HASH"}],
            BillingMode=BILLING,
        )
        call(
            f"wait for the new lock table '{table}'",
            dynamodb.get_waiter("table_exists").wait,
            TableName=table,
            WaiterConfig={"Delay": 1, "MaxAttempts": 60},
        )
        yield Item(resource, "", Status.CREATED, region)
        described = _describe(dynamodb, table) or {}
    else:
        yield Item(resource, "", Status.ALREADY, f"exists in {region}")
    yield _hash_key(resource, described, fresh=fresh)
    yield _billing(dynamodb, table, resource, described, check=check, fresh=fresh)


def _describe(dynamodb: Any, table: str) -> dict[str, Any] | None:
    answer = call(
        f"look up the lock table '{table}'",
        dynamodb.describe_table,
        absent=("ResourceNotFoundException",),
        TableName=table,
    )
    return None if answer is None else dict(answer.get("Table", {}))


def _hash_key(resource: str, described: dict[str, Any], *, fresh: bool) -> Item:
    types = {
        a["AttributeName"]: a["AttributeType"] for a in described.get("AttributeDefinitions", [])
    }
    hashes = [k["AttributeName"] for k in described.get("KeySchema", []) if k["KeyType"] == "HASH"]
    found = (hashes[0], types.get(hashes[0], "?")) if hashes else None
    wanted = f"{HASH_KEY[0]}, type {HASH_KEY[1]}"
    if found == HASH_KEY:
        return Item(resource, "hash key", Status.SET if fresh else Status.ALREADY, wanted)
    now = f"{found[0]}, type {found[1]}" if found else "none"
    ranges = any(k["KeyType"] == "RANGE" for k in described.get("KeySchema", []))
    # Not fixable in place: a table's key never changes, and the table is never replaced.
    return Item(
        resource,
        "hash key",
        Status.DIFFERS,
        f"{now}{' and a range key' if ranges else ''}, and terraform needs {wanted} alone; a "
        "table's key cannot change, so name another table in state.dynamodb_table",
    )


def _billing(
    dynamodb: Any,
    table: str,
    resource: str,
    described: dict[str, Any],
    *,
    check: bool,
    fresh: bool,
) -> Item:
    # A table made before on-demand billing existed has no summary: it is provisioned.
    now = str(described.get("BillingModeSummary", {}).get("BillingMode") or "PROVISIONED")
    if now == BILLING:
        return Item(resource, "billing", Status.SET if fresh else Status.ALREADY, BILLING)
    if check:
        return Item(resource, "billing", Status.DIFFERS, f"{now}, wanted {BILLING}")
    call(
        f"switch the lock table '{table}' to on-demand billing",
        dynamodb.update_table,
        TableName=table,
        BillingMode=BILLING,
    )
    return Item(resource, "billing", Status.SET, f"{BILLING}, was {now}")
