"""What the state's resources should be (`Layout`), what was found or done about each of their
settings (`Item`), and the one door to AWS every call goes through (`call`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tfrun.errors import ExitCode, TfrunError

# (service, region) -> a boto3 client.
ClientFactory = Callable[[str, str], Any]


class StateStoreError(TfrunError):
    """An AWS call about the state bucket or lock table failed."""

    exit_code = ExitCode.STACK_FAILED

    def __init__(self, what: str, cause: str, hint: str = "") -> None:
        self.what = what  # "turn on versioning of the state bucket 'acme-tfstate'"
        self.cause = cause  # "AccessDenied: Access Denied"
        super().__init__(f"Could not {what} ({cause}).{f' {hint}' if hint else ''}")


@dataclass(frozen=True)
class Layout:
    """The state bucket and lock table as they should be."""

    bucket: str
    region: str
    lock_table: str | None = None
    kms_key_id: str | None = None  # None: SSE-S3
    # The policy that denies requests without TLS refuses every request that reaches the
    # bucket over plain HTTP: a local endpoint (moto, LocalStack on http://) never gets it.
    tls_policy: bool = True


class Status(Enum):
    CREATED = "created"
    SET = "set"  # changed to what the layout wants
    ALREADY = "already so"
    DIFFERS = "differs"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Item:
    """One line of `tfrun bootstrap`: a resource ("" setting) or one of its settings."""

    resource: str  # "state bucket acme-tfstate"
    setting: str  # "versioning"; "" for the resource itself
    status: Status
    detail: str = ""

    def __str__(self) -> str:
        head = f"{self.resource}: {self.setting}: " if self.setting else f"{self.resource}: "
        if not self.detail:
            return head + self.status.value
        if self.status in (Status.DIFFERS, Status.SKIPPED):
            return f"{head}{self.status.value}: {self.detail}"
        return f"{head}{self.status.value} ({self.detail})"

    @property
    def name(self) -> str:
        """What differs, as a summary names it: "versioning of state bucket acme-tfstate"."""
        return f"{self.setting} of {self.resource}" if self.setting else self.resource


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _cause(exc: BaseException) -> str:
    code = error_code(exc)
    if code:
        response: dict[str, Any] = getattr(exc, "response", {})
        message = str(response.get("Error", {}).get("Message", "")).strip()
        return f"{code}: {message}" if message and message != code else code
    return f"{type(exc).__name__}: {exc}"


def call(what: str, method: Callable[..., Any], *, absent: tuple[str, ...] = (), **kw: Any) -> Any:
    """`method(**kw)`; None when AWS answers with one of the `absent` codes (the thing is not
    there), and any other failure a `StateStoreError` saying what was being done."""
    try:
        return method(**kw)
    except Exception as exc:
        if error_code(exc) in absent:
            return None
        # botocore's own exceptions (no credentials, endpoint unreachable, a waiter that gave
        # up) and the service's answers alike: all are the person's to fix, not tfrun's bugs.
        if type(exc).__module__.startswith(("botocore", "boto3")):
            raise StateStoreError(what, _cause(exc)) from None
        raise
