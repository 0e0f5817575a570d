"""Where terraform's state lives: the S3 bucket and the DynamoDB lock table, made ready
through any boto3 client factory (the sandbox's today)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (service, region) -> a boto3 client.
ClientFactory = Callable[[str, str], Any]


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def ensure_bucket(client: ClientFactory, bucket: str, region: str) -> None:
    """The state bucket, versioned; created when missing."""
    s3 = client("s3", region)
    request: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses a location constraint naming itself.
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**request)
    except Exception as exc:
        if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def ensure_lock_table(client: ClientFactory, table: str, region: str) -> None:
    """The DynamoDB lock table (`LockID` hash key, on demand); created when missing."""
    dynamodb = client("dynamodb", region)
    try:
        dynamodb.describe_table(TableName=table)
        return
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except Exception as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )
