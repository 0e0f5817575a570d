"""The state bucket: there, in its region, versioned, encrypted by default, closed to the
public, and reachable only over TLS. Settings are only ever made stricter: a stronger
encryption, an existing policy and its statements stay as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from tfrun.state_store.model import ClientFactory, Item, Layout, StateStoreError, Status, call

PUBLIC_ACCESS_SETTINGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
TLS_SID = "DenyInsecureTransport"
POLICY_VERSION = "2012-10-17"
SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
DSSE_KMS = "aws:kms:dsse"


def ensure_bucket(client: ClientFactory, layout: Layout, *, check: bool = False) -> Iterator[Item]:
    """The bucket and each of its settings, one `Item` each, made so unless `check`."""
    s3 = client("s3", layout.region)
    bucket, resource = layout.bucket, f"state bucket {layout.bucket}"
    region = _region_of(s3, bucket)
    if region is None:
        if check:
            yield Item(resource, "", Status.DIFFERS, f"does not exist (in {layout.region})")
            return
        _create(s3, bucket, layout.region)
        yield Item(resource, "", Status.CREATED, layout.region)
    elif region != layout.region:
        # Nothing about it can be fixed from here: a bucket never moves.
        yield Item(
            resource,
            "",
            Status.DIFFERS,
            f"it is in {region}, and state.region says {layout.region}; a bucket cannot move, "
            f"so set state.region = {json.dumps(region)} in tfrun.hcl",
        )
        return
    else:
        yield Item(resource, "", Status.ALREADY, f"exists in {region}")
    fresh = region is None
    yield _versioning(s3, layout, resource, check=check, fresh=fresh)
    yield _encryption(s3, layout, resource, check=check, fresh=fresh)
    yield _public_access(s3, layout, resource, check=check, fresh=fresh)
    yield _tls_policy(s3, layout, resource, check=check)


def _region_of(s3: Any, bucket: str) -> str | None:
    """The bucket's region; None when it does not exist."""
    head = call(
        f"look up the state bucket '{bucket}'",
        s3.head_bucket,
        absent=("404", "NoSuchBucket", "NotFound"),
        Bucket=bucket,
    )
    if head is None:
        return None
    region = head.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
    if region:
        return str(region)
    location = call(
        f"read the region of the state bucket '{bucket}'", s3.get_bucket_location, Bucket=bucket
    )
    constraint = location.get("LocationConstraint")
    # The oldest regions' names in a location constraint: none, and "EU".
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else str(constraint)


def _create(s3: Any, bucket: str, region: str) -> None:
    request: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses a location constraint naming itself.
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    what = f"create the state bucket '{bucket}' in {region}"
    try:
        call(what, s3.create_bucket, absent=("BucketAlreadyOwnedByYou",), **request)
    except StateStoreError as exc:
        if exc.cause.startswith("BucketAlreadyExists"):
            raise StateStoreError(
                what,
                exc.cause,
                "Bucket names are global, and another AWS account has this one: choose another "
                "state.bucket in tfrun.hcl.",
            ) from None
        raise
    call(
        f"wait for the new state bucket '{bucket}'",
        s3.get_waiter("bucket_exists").wait,
        Bucket=bucket,
        WaiterConfig={"Delay": 1, "MaxAttempts": 30},
    )


def _outcome(
    resource: str, setting: str, *, ok: bool, check: bool, now: str, wanted: str, fresh: bool
) -> tuple[Item, bool]:
    """The item for one setting, and whether it must be set."""
    if ok:
        return Item(resource, setting, Status.ALREADY, now), False
    if check:
        return Item(resource, setting, Status.DIFFERS, f"{now}, wanted {wanted}"), False
    return Item(resource, setting, Status.SET, wanted if fresh else f"{wanted}, was {now}"), True


def _versioning(s3: Any, layout: Layout, resource: str, *, check: bool, fresh: bool) -> Item:
    bucket = layout.bucket
    answer = call(
        f"read the versioning of the state bucket '{bucket}'",
        s3.get_bucket_versioning,
        Bucket=bucket,
    )
    # Versions are the only way back from a state that a bad apply or a bug overwrote.
    now = str(answer.get("Status") or "never enabled")
    item, change = _outcome(
        resource, "versioning", ok=now == "Enabled", check=check, now=now, wanted="Enabled",
        fresh=fresh,
    )  # fmt: skip
    if change:
        call(
            f"turn on versioning of the state bucket '{bucket}'",
            s3.put_bucket_versioning,
            Bucket=bucket,
            VersioningConfiguration={"Status": "Enabled"},
        )
    return item


def _describe_sse(algorithm: str | None, key: str | None) -> str:
    if algorithm is None:
        return "none"
    if algorithm == SSE_S3:
        return "SSE-S3"
    name = {SSE_KMS: "SSE-KMS", DSSE_KMS: "DSSE-KMS"}.get(algorithm, algorithm)
    return f"{name} with key {key}" if key else f"{name} with the AWS managed key aws/s3"


def _encryption(s3: Any, layout: Layout, resource: str, *, check: bool, fresh: bool) -> Item:
    bucket = layout.bucket
    answer = call(
        f"read the default encryption of the state bucket '{bucket}'",
        s3.get_bucket_encryption,
        absent=("ServerSideEncryptionConfigurationNotFoundError",),
        Bucket=bucket,
    )
    algorithm, key = None, None
    for found in (answer or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
        default = found.get("ApplyServerSideEncryptionByDefault")
        if default:
            algorithm, key = default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")
            break
    kms = (SSE_KMS, DSSE_KMS)
    if layout.kms_key_id:
        ok = algorithm in kms and key == layout.kms_key_id
    else:
        ok = algorithm == SSE_S3 or algorithm in kms  # KMS is stricter: it stays
    wanted = _describe_sse(SSE_KMS if layout.kms_key_id else SSE_S3, layout.kms_key_id)
    now = _describe_sse(algorithm, key)
    item, change = _outcome(
        resource, "default encryption", ok=ok, check=check, now=now, wanted=wanted, fresh=fresh
    )
    if change:
        rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_S3}}
        if layout.kms_key_id:
            rule = {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": SSE_KMS,
                    "KMSMasterKeyID": layout.kms_key_id,
                },
                # One data key per bucket rather than a KMS request per object.
                "BucketKeyEnabled": True,
            }
        call(
            f"set the default encryption of the state bucket '{bucket}' to {wanted}",
            s3.put_bucket_encryption,
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [rule]},
        )
    return item


def _public_access(s3: Any, layout: Layout, resource: str, *, check: bool, fresh: bool) -> Item:
    bucket = layout.bucket
    answer = call(
        f"read the public access block of the state bucket '{bucket}'",
        s3.get_public_access_block,
        absent=("NoSuchPublicAccessBlockConfiguration",),
        Bucket=bucket,
    )
    found = (answer or {}).get("PublicAccessBlockConfiguration", {})
    off = [name for name in PUBLIC_ACCESS_SETTINGS if found.get(name) is not True]
    now = f"off: {', '.join(off)}" if off else "all four on"
    item, change = _outcome(
        resource, "public access block", ok=not off, check=check, now=now,
        wanted="all four on", fresh=fresh,
    )  # fmt: skip
    if change:
        call(
            f"block public access to the state bucket '{bucket}'",
            s3.put_public_access_block,
            Bucket=bucket,
            PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_SETTINGS, True),
        )
    return item


# ---------------------------------------------------------------------------- the TLS policy


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def tls_statement(bucket: str, region: str, sid: str = TLS_SID) -> dict[str, Any]:
    arn = f"arn:{partition(region)}:s3:::{bucket}"
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def denies_insecure_transport(statement: Any, bucket: str, region: str) -> bool:
    """Whether a statement denies every request without TLS to the bucket and its objects: it
    may say so in other words (`{"AWS": "*"}`, `"*"` actions, wildcard resources), but it must
    not be narrowed by another condition."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict)
        and set(principal) == {"AWS"}
        and _listed(principal["AWS"]) == ["*"]
    ):
        return False
    actions = {str(action).lower() for action in _listed(statement.get("Action"))}
    if not actions & {"s3:*", "*"}:
        return False
    arn = f"arn:{partition(region)}:s3:::{bucket}"
    patterns = [str(resource) for resource in _listed(statement.get("Resource"))]
    if not all(any(fnmatchcase(r, p) for p in patterns) for r in (arn, f"{arn}/*")):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or len(condition) != 1:
        return False
    (operator, tests), = condition.items()  # fmt: skip
    if operator not in ("Bool", "BoolIfExists") or not isinstance(tests, dict) or len(tests) != 1:
        return False
    (name, value), = tests.items()  # fmt: skip
    return name.lower() == "aws:securetransport" and [str(v).lower() for v in _listed(value)] == [
        "false"
    ]


def _tls_policy(s3: Any, layout: Layout, resource: str, *, check: bool) -> Item:
    setting = "TLS-only policy"
    if not layout.tls_policy:
        return Item(
            resource,
            setting,
            Status.SKIPPED,
            "the endpoint is plain HTTP, and a policy that denies requests without TLS would "
            "refuse every one of them",
        )
    bucket = layout.bucket
    answer = call(
        f"read the policy of the state bucket '{bucket}'",
        s3.get_bucket_policy,
        absent=("NoSuchBucketPolicy",),
        Bucket=bucket,
    )
    policy: dict[str, Any] = json.loads(answer["Policy"]) if answer else {}
    statements = _listed(policy.get("Statement", []))
    if any(denies_insecure_transport(s, bucket, layout.region) for s in statements):
        return Item(resource, setting, Status.ALREADY, "a statement denies requests without TLS")
    now = f"none of the policy's {len(statements)} statements does" if answer else "no policy"
    if check:
        return Item(
            resource, setting, Status.DIFFERS, f"{now}, wanted a statement that denies requests "
            "without TLS (aws:SecureTransport false)",
        )  # fmt: skip
    sids = {s.get("Sid") for s in statements if isinstance(s, dict)}
    # A Sid is unique within a policy; someone else's statement may hold ours.
    sid = next(
        name
        for name in (TLS_SID, *(f"{TLS_SID}{n}" for n in range(2, len(sids) + 2)))
        if name not in sids
    )
    merged = {"Version": POLICY_VERSION, **policy}
    merged["Statement"] = [*statements, tls_statement(bucket, layout.region, sid)]
    call(
        f"add a statement that denies requests without TLS to the policy of the state bucket "
        f"'{bucket}'",
        s3.put_bucket_policy,
        Bucket=bucket,
        Policy=json.dumps(merged),
    )
    done = (
        f"statement {sid} added; the policy's {len(statements)} other statements stay"
        if answer
        else f"a new policy with statement {sid}"
    )
    return Item(resource, setting, Status.SET, done)
