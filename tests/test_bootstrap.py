"""`tfrun bootstrap [--check]` and the state store under it, against moto on 127.0.0.1: every
setting read back through boto3, idempotence, --check that changes nothing, policies and
settings that are never loosened, and each error path.

The CLI talks to moto over plain HTTP, where a TLS-only bucket policy would refuse every
request (moto enforces it), so the command skips that one setting there; the policy itself is
proven through `state_store.ensure` with the policy on, against the same server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Result, root_hcl, run_cli, write_tree

from tfrun import cli, sandbox, state_store
from tfrun.config import build, load_file
from tfrun.errors import ConfigError
from tfrun.state_store import Item, Layout, StateStoreError, Status

REGION = "eu-west-1"
PUBLIC_ACCESS = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Live:
    """A live root whose state bucket and lock table are this test's own, on the session's
    moto server, which the CLI reaches through TFRUN_AWS_ENDPOINT."""

    def __init__(self, root: Path, box: sandbox.Sandbox, bucket: str, table: str) -> None:
        self.root, self.box, self.bucket, self.table = root, box, bucket, table
        self.env = {**os.environ, **box.environ()}

    def write(self, *, state_extra: str = "", lock_table: bool = True) -> None:
        text = root_hcl(self.bucket, REGION, self.table if lock_table else None)
        text = text.replace("  encrypt = true\n", f"  encrypt = true\n{state_extra}")
        write_tree(self.root, {"tfrun.hcl": text})

    def bootstrap(self, *args: str) -> Result:
        return run_cli(["bootstrap", *args], self.root, self.env)

    def s3(self, region: str = REGION) -> Any:
        return self.box.client("s3", region)

    def dynamodb(self) -> Any:
        return self.box.client("dynamodb", REGION)


@pytest.fixture
def live(tmp_path: Path, moto_sandbox: sandbox.Sandbox) -> Live:
    made = Live(tmp_path / "live", moto_sandbox, _unique("boot"), _unique("boot-locks"))
    made.write()
    return made


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def make_bucket(s3: Any, bucket: str, region: str = REGION) -> None:
    request: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**request)


def policy_of(s3: Any, bucket: str) -> dict[str, Any]:
    return dict(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))


# ---------------------------------------------------------------------------- the command


def test_a_fresh_bucket_and_table_get_every_setting_then_nothing_changes(live: Live) -> None:
    first = live.bootstrap().assert_success()
    bucket, table = f"state bucket {live.bucket}", f"lock table {live.table}"
    assert lines(first) == [
        f"{bucket}: created ({REGION})",
        f"{bucket}: versioning: set (Enabled)",
        f"{bucket}: default encryption: set (SSE-S3)",
        f"{bucket}: public access block: set (all four on)",
        f"{bucket}: TLS-only policy: skipped: the endpoint is plain HTTP, and a policy that "
        "denies requests without TLS would refuse every one of them",
        f"{table}: created ({REGION})",
        f"{table}: hash key: set (LockID, type S)",
        f"{table}: billing: set (PAY_PER_REQUEST)",
    ]
    assert f"with the ambient AWS credentials at {live.box.endpoint}" in first.stderr
    assert "the state is ready (7 of 8 changed)" in first.stderr

    s3 = live.s3()
    assert s3.head_bucket(Bucket=live.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=live.bucket)["LocationConstraint"] == REGION
    assert s3.get_bucket_versioning(Bucket=live.bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=live.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    block = s3.get_public_access_block(Bucket=live.bucket)["PublicAccessBlockConfiguration"]
    assert block == PUBLIC_ACCESS
    described = live.dynamodb().describe_table(TableName=live.table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert described["AttributeDefinitions"] == [{"AttributeName": "LockID", "AttributeType": "S"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    second = live.bootstrap().assert_success()
    assert [line.split(": ")[-1] for line in lines(second) if "TLS-only" not in line] == [
        f"already so (exists in {REGION})",
        "already so (Enabled)",
        "already so (SSE-S3)",
        "already so (all four on)",
        f"already so (exists in {REGION})",
        "already so (LockID, type S)",
        "already so (PAY_PER_REQUEST)",
    ]
    assert "(0 of 8 changed)" in second.stderr
    checked = live.bootstrap("--check").assert_success()
    assert "differs" not in checked.stdout and "everything is as it should be" in checked.stderr


def test_check_names_versioning_that_is_off_and_changes_nothing(live: Live) -> None:
    live.bootstrap().assert_success()
    live.s3().put_bucket_versioning(
        Bucket=live.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    checked = live.bootstrap("--check").assert_exit(1)
    assert f"state bucket {live.bucket}: versioning: differs: Suspended, wanted Enabled" in lines(
        checked
    )
    assert sum("differs" in line for line in lines(checked)) == 1
    assert f"versioning of state bucket {live.bucket}" in checked.stderr
    assert "Nothing was changed" in checked.stderr
    assert live.s3().get_bucket_versioning(Bucket=live.bucket)["Status"] == "Suspended"

    fixed = live.bootstrap().assert_success()
    assert f"state bucket {live.bucket}: versioning: set (Enabled, was Suspended)" in lines(fixed)
    assert live.s3().get_bucket_versioning(Bucket=live.bucket)["Status"] == "Enabled"


def test_check_on_nothing_yet_creates_nothing(live: Live) -> None:
    checked = live.bootstrap("--check").assert_exit(1)
    assert lines(checked) == [
        f"state bucket {live.bucket}: differs: does not exist (in {REGION})",
        f"lock table {live.table}: differs: does not exist (in {REGION})",
    ]
    with pytest.raises(ClientError):
        live.s3().head_bucket(Bucket=live.bucket)
    assert live.table not in live.dynamodb().list_tables()["TableNames"]


def test_without_a_lock_table_only_the_bucket_is_made(live: Live) -> None:
    live.write(lock_table=False)
    result = live.bootstrap().assert_success()
    assert not any(line.startswith("lock table") for line in lines(result))


def test_settings_are_tightened_and_stricter_ones_stay(live: Live) -> None:
    s3 = live.s3()
    make_bucket(s3, live.bucket)
    s3.put_public_access_block(
        Bucket=live.bucket,
        PublicAccessBlockConfiguration={**PUBLIC_ACCESS, "BlockPublicAcls": False},
    )
    kms = f"arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}"
    s3.put_bucket_encryption(
        Bucket=live.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms,
                    }
                }
            ]
        },
    )
    live.write(lock_table=False)
    checked = live.bootstrap("--check").assert_exit(1)
    bucket = f"state bucket {live.bucket}"
    assert f"{bucket}: public access block: differs: off: BlockPublicAcls, wanted all four on" in (
        lines(checked)
    )
    # SSE-KMS is stricter than the SSE-S3 tfrun asks for when no key is named: it stays.
    assert f"{bucket}: default encryption: already so (SSE-KMS with key {kms})" in lines(checked)

    result = live.bootstrap().assert_success()
    assert f"{bucket}: public access block: set (all four on, was off: BlockPublicAcls)" in lines(
        result
    )
    block = s3.get_public_access_block(Bucket=live.bucket)["PublicAccessBlockConfiguration"]
    assert block == PUBLIC_ACCESS
    (rule,) = s3.get_bucket_encryption(Bucket=live.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == kms


def test_kms_key_id_makes_the_default_encryption_sse_kms(live: Live) -> None:
    kms = f"arn:aws:kms:{REGION}:123456789012:key/{uuid.uuid4()}"
    make_bucket(live.s3(), live.bucket)
    live.s3().put_bucket_encryption(
        Bucket=live.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    live.write(state_extra=f'  kms_key_id = "{kms}"\n', lock_table=False)
    checked = live.bootstrap("--check").assert_exit(1)
    want = f"SSE-KMS with key {kms}"
    assert (
        f"state bucket {live.bucket}: default encryption: differs: SSE-S3, wanted {want}"
        in lines(checked)
    )
    result = live.bootstrap().assert_success()
    assert f"state bucket {live.bucket}: default encryption: set ({want}, was SSE-S3)" in lines(
        result
    )
    (rule,) = live.s3().get_bucket_encryption(Bucket=live.bucket)[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rule == {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms},
        "BucketKeyEnabled": True,
    }
    assert f"default encryption: already so ({want})" in live.bootstrap().assert_success().stdout


def test_a_bucket_in_another_region_differs_and_is_left_alone(live: Live) -> None:
    make_bucket(live.s3("us-east-1"), live.bucket, "us-east-1")
    for args in ((), ("--check",)):
        result = live.bootstrap(*args).assert_exit(1)
        assert lines(result)[0].startswith(
            f"state bucket {live.bucket}: differs: it is in us-east-1, and state.region says "
            f"{REGION}; a bucket cannot move"
        )
        assert not any("versioning" in line for line in lines(result))
        assert ("Nothing was changed" if args else "bootstrap cannot change this") in (
            result.stderr
        )
    assert "Status" not in live.s3("us-east-1").get_bucket_versioning(Bucket=live.bucket)


def test_a_lock_table_with_another_key_differs_and_provisioned_billing_is_switched(
    live: Live,
) -> None:
    dynamodb = live.dynamodb()
    dynamodb.create_table(
        TableName=live.table,
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    checked = live.bootstrap("--check").assert_exit(1)
    assert f"lock table {live.table}: billing: differs: PROVISIONED, wanted PAY_PER_REQUEST" in (
        lines(checked)
    )
    result = live.bootstrap().assert_success()
    assert f"lock table {live.table}: billing: set (PAY_PER_REQUEST, was PROVISIONED)" in lines(
        result
    )
    summary = dynamodb.describe_table(TableName=live.table)["Table"]["BillingModeSummary"]
    assert summary["BillingMode"] == "PAY_PER_REQUEST"

    other = _unique("boot-wrong-key")
    dynamodb.create_table(
        TableName=other,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    live.table = other
    live.write()
    result = live.bootstrap().assert_exit(1)
    assert (
        f"lock table {other}: hash key: differs: id, type S, and terraform needs LockID, type S "
        "alone; a table's key cannot change" in result.stdout
    )
    assert f"hash key of lock table {other}: bootstrap cannot change this" in result.stderr
    assert other in dynamodb.list_tables()["TableNames"]  # never replaced


def test_sandbox_up_makes_what_bootstrap_wants(tmp_path: Path) -> None:
    bucket, table = _unique("boot-sbx"), _unique("boot-sbx-locks")
    root = write_tree(tmp_path / "live", {"tfrun.hcl": root_hcl(bucket, REGION, table)})
    env = {**os.environ, "HOME": str(tmp_path)}
    try:
        run_cli(["sandbox", "up"], root, env).assert_success()
        checked = run_cli(["bootstrap", "--check"], root, env).assert_success()
        box = sandbox.current(root)
        assert box is not None and f"with the sandbox at {box.endpoint}" in checked.stderr
        assert len(lines(checked)) == 8
        assert all(("already so" in line) != ("skipped" in line) for line in lines(checked))
    finally:
        sandbox.down(root)


# ---------------------------------------------------------------------------- the TLS policy


def _ensure(box: sandbox.Sandbox, layout: Layout, *, check: bool = False) -> list[Item]:
    return list(state_store.ensure(box.client, layout, check=check))


def _by_setting(items: list[Item]) -> dict[str, Item]:
    return {item.setting: item for item in items}


def test_the_tls_policy_is_added_once(moto_sandbox: sandbox.Sandbox) -> None:
    layout = Layout(_unique("boot-tls"), REGION)
    policy = _by_setting(_ensure(moto_sandbox, layout))["TLS-only policy"]
    assert policy.status is Status.SET and policy.detail == (
        "a new policy with statement DenyInsecureTransport"
    )
    arn = f"arn:aws:s3:::{layout.bucket}"
    assert policy_of(moto_sandbox.client("s3", REGION), layout.bucket) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    again = _ensure(moto_sandbox, layout)
    assert {item.status for item in again} == {Status.ALREADY}
    assert {item.status for item in _ensure(moto_sandbox, layout, check=True)} == {Status.ALREADY}


def test_an_existing_policy_keeps_its_statements(moto_sandbox: sandbox.Sandbox) -> None:
    layout = Layout(_unique("boot-policy"), REGION)
    s3 = moto_sandbox.client("s3", REGION)
    make_bucket(s3, layout.bucket)
    arn = f"arn:aws:s3:::{layout.bucket}"
    theirs = [
        # Stricter than tfrun's: no TLS older than 1.2. It stays, and its Sid is ours.
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
        {
            "Sid": "NoDeletes",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["s3:DeleteBucket", "s3:DeleteObjectVersion"],
            "Resource": [arn, f"{arn}/*"],
        },
    ]
    s3.put_bucket_policy(
        Bucket=layout.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": theirs})
    )
    checked = _by_setting(_ensure(moto_sandbox, layout, check=True))["TLS-only policy"]
    assert checked.status is Status.DIFFERS
    assert checked.detail.startswith("none of the policy's 2 statements does")
    assert policy_of(s3, layout.bucket)["Statement"] == theirs  # --check changed nothing

    added = _by_setting(_ensure(moto_sandbox, layout))["TLS-only policy"]
    assert added.detail == (
        "statement DenyInsecureTransport2 added; the policy's 2 other statements stay"
    )
    statements = policy_of(s3, layout.bucket)["Statement"]
    assert statements[:2] == theirs
    assert statements[2] == state_store.tls_statement(
        layout.bucket, REGION, "DenyInsecureTransport2"
    )


@pytest.mark.parametrize(
    "statement",
    [
        {"Principal": {"AWS": "*"}, "Action": "*", "Resource": "arn:aws:s3:::BUCKET*"},
        {"Principal": {"AWS": ["*"]}, "Action": ["s3:*"], "Resource": "*"},
        {
            "Principal": "*",
            "Action": "S3:*",
            "Resource": ["arn:aws:s3:::BUCKET", "arn:aws:s3:::BUCKET/*"],
        },
    ],
)
def test_a_statement_in_other_words_counts(statement: dict[str, Any]) -> None:
    written = json.loads(json.dumps(statement).replace("BUCKET", "acme"))
    full = {"Effect": "Deny", **written, "Condition": {"Bool": {"aws:SecureTransport": False}}}
    assert state_store.denies_insecure_transport(full, "acme", REGION)


@pytest.mark.parametrize(
    "change",
    [
        {"Effect": "Allow"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {"Action": "s3:GetObject"},
        {"Resource": "arn:aws:s3:::acme/*"},  # objects only: the bucket itself is open
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {
            "Condition": {
                "Bool": {"aws:SecureTransport": "false"},
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            }
        },
        {"NotAction": "s3:ListBucket"},
    ],
)
def test_a_narrower_statement_does_not_count(change: dict[str, Any]) -> None:
    statement = {**state_store.tls_statement("acme", REGION), **change}
    assert not state_store.denies_insecure_transport(statement, "acme", REGION)


def test_the_partition_follows_the_region() -> None:
    statement = state_store.tls_statement("acme", "cn-north-1")
    assert statement["Resource"] == ["arn:aws-cn:s3:::acme", "arn:aws-cn:s3:::acme/*"]
    assert state_store.denies_insecure_transport(statement, "acme", "cn-north-1")
    assert not state_store.denies_insecure_transport(statement, "acme", REGION)


# ---------------------------------------------------------------------------- credentials


def _config(tmp_path: Path, state_extra: str = "") -> Any:
    text = root_hcl("acme-tfstate", REGION, None).replace(
        "  encrypt = true\n", f"  encrypt = true\n{state_extra}"
    )
    path = write_tree(tmp_path, {"tfrun.hcl": text}) / "tfrun.hcl"
    return build([(path, load_file(path, is_root=True, is_stack=False))], path)


def test_the_state_session_uses_state_profile_else_the_ambient_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile state-admin]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    with_profile = _config(tmp_path / "a", '  profile = "state-admin"\n')
    session = state_store.state_session(with_profile)
    assert session.profile_name == "state-admin" and session.region_name == REGION
    assert state_store.describe_credentials(with_profile) == "the profile 'state-admin'"

    ambient = _config(tmp_path / "b")
    assert state_store.state_session(ambient).profile_name == "default"
    assert state_store.describe_credentials(ambient) == "the ambient AWS credentials"


def test_a_state_profile_that_is_not_defined_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"state\.profile in tfrun\.hcl is 'nope'"):
        state_store.state_session(_config(tmp_path, '  profile = "nope"\n'))
    write_tree(tmp_path / "live", {"tfrun.hcl": (tmp_path / "tfrun.hcl").read_text()})
    result = run_cli(["bootstrap"], tmp_path / "live", {**os.environ})
    result.assert_exit(4)
    assert "no profile of that name" in result.stderr


# ---------------------------------------------------------------------------- error paths


def test_a_state_role_is_refused_rather_than_ignored(tmp_path: Path) -> None:
    role = '  role_arn = "arn:aws:iam::111111111111:role/tfstate"\n'
    with pytest.raises(ConfigError, match="cannot assume the state account's role yet"):
        state_store.state_session(_config(tmp_path, role))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_endpoint_is_one_paragraph_naming_the_credentials(live: Live) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    live.env["TFRUN_AWS_ENDPOINT"] = endpoint
    result = live.bootstrap().assert_exit(1)
    (message,) = result.stderr.strip().splitlines()[-1:]
    assert message.startswith(f"tfrun: error: Could not look up the state bucket '{live.bucket}'")
    assert f"tfrun used the ambient AWS credentials at {endpoint}, and nothing answered" in (
        message
    )
    assert "Traceback" not in result.stderr


def test_outside_a_live_repository_is_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bootstrap"]) == 4
    assert "no tfrun.hcl here" in capsys.readouterr().err


def test_a_dead_sandbox_stops_bootstrap(
    live: Live, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state_file = sandbox.state_dir_for(live.root) / sandbox.STATE_FILE
    state_file.parent.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that no longer runs
    state_file.write_text(json.dumps({"pid": child.pid, "port": 1, "endpoint": "x"}))
    assert cli.main(["bootstrap", str(live.root)]) == 4
    assert "rather than send this command to AWS" in capsys.readouterr().err


class _Refusing:
    """A client whose every call is refused, as AWS answers one that lacks a permission."""

    def __init__(self, code: str, allowed: tuple[str, ...] = ()) -> None:
        self.code, self.allowed = code, allowed

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def refuse(**_kw: Any) -> Any:
            if name in self.allowed:
                raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, name)
            raise ClientError({"Error": {"Code": self.code, "Message": "No."}}, name)

        return refuse


def test_a_refused_call_says_what_was_being_done() -> None:
    layout = Layout("acme-tfstate", REGION)
    with pytest.raises(StateStoreError) as caught:
        list(state_store.ensure(lambda _s, _r: _Refusing("AccessDenied"), layout))
    assert str(caught.value) == (
        "Could not look up the state bucket 'acme-tfstate' (AccessDenied: No.)."
    )
    # A name another account holds: the fix is another name.
    with pytest.raises(StateStoreError, match="another AWS account has this one"):
        list(
            state_store.ensure(
                lambda _s, _r: _Refusing("BucketAlreadyExists", allowed=("head_bucket",)), layout
            )
        )


def test_a_refused_call_through_the_command_names_the_credentials(
    live: Live, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    live.write(state_extra='  profile = "state-admin"\n')
    aws_config = live.root / "aws-config"
    aws_config.write_text("[profile state-admin]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    monkeypatch.setenv("TFRUN_AWS_ENDPOINT", live.box.endpoint)
    # What AWS answers credentials that lack a permission, without asking anything of AWS.
    monkeypatch.setattr(
        state_store, "clients", lambda *_a: lambda _s, _r: _Refusing("AccessDenied")
    )
    assert cli.main(["bootstrap", str(live.root)]) == 1
    err = capsys.readouterr().err
    assert (
        f"Could not look up the state bucket '{live.bucket}' (AccessDenied: No.). tfrun used the "
        f"profile 'state-admin' at {live.box.endpoint}: check that they are current"
    ) in err
    assert "docs/auth.md, Bootstrap" in err


def test_something_that_is_not_aws_is_a_bug_and_not_hidden() -> None:
    def broken(**_kw: Any) -> Any:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        state_store.model.call("read something", broken)


def test_a_failed_sandbox_provision_names_the_sandbox_and_its_log(tmp_path: Path) -> None:
    port = _closed_port()
    box = sandbox.Sandbox(
        pid=0,
        port=port,
        endpoint=f"http://127.0.0.1:{port}",
        state_dir=tmp_path,
        config_file=tmp_path / "aws-config",
        credentials_file=tmp_path / "aws-credentials",
        log_file=tmp_path / "moto.log",
    )
    with pytest.raises(sandbox.SandboxError) as caught:
        sandbox.provision(box, "acme-tfstate", REGION, None, [])
    message = str(caught.value)
    assert message.startswith(
        f"Could not look up the state bucket 'acme-tfstate' in the sandbox at {box.endpoint} ("
    )
    assert str(box.log_file) in message


def test_sandbox_provision_uses_the_same_settings(moto_sandbox: sandbox.Sandbox) -> None:
    bucket = _unique("boot-prov")
    sandbox.provision(moto_sandbox, bucket, REGION, None, [])
    s3 = moto_sandbox.client("s3", REGION)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == (
        PUBLIC_ACCESS
    )
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    with pytest.raises(ClientError):  # plain HTTP: no TLS-only policy, or nothing would work
        s3.get_bucket_policy(Bucket=bucket)
