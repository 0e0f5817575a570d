"""Which terraform failures are worth a second try, and how long to wait before it.

A failure is transient when its output names a cause that goes away by itself: AWS throttling,
a dropped connection, a provider download that broke, or Linux refusing to exec a provider
binary another init is still writing ("text file busy"). Everything else (a wrong argument,
a policy denial, a bad config) fails the same way every time and is not retried.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from tfrun.config import RetryConfig

DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_S = 2.0
# Throttling clears in seconds to a minute; waiting longer than this only delays the report.
MAX_DELAY_S = 60.0

# (label shown in the log, pattern). Labels say what happened in words an operator knows.
_TRANSIENT: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        (
            "AWS throttling",
            r"Throttling|ThrottledException|RequestLimitExceeded|TooManyRequestsException"
            r"|Rate exceeded|SlowDown|RequestThrottled|PriorRequestNotComplete",
        ),
        (
            "a network error",
            r"connection reset by peer|i/o timeout|TLS handshake timeout|unexpected EOF"
            r"|Client\.Timeout exceeded|temporary failure in name resolution"
            r"|server misbehaving|broken pipe|net/http: request canceled"
            r"|503 Service Unavailable|ServiceUnavailable|InternalError|RequestTimeout",
        ),
        (
            "a provider download error",
            r"Failed to install provider|Failed to query available provider packages"
            r"|could not query provider registry|Error while installing"
            r"|failed to download|Failed to retrieve provider",
        ),
        ("a busy provider binary", r"text file busy"),
    )
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def transient_cause(output: str) -> str | None:
    """What in `output` marks the failure as transient, or None when it is not."""
    text = _ANSI.sub("", output)
    for label, pattern in _TRANSIENT:
        match = pattern.search(text)
        if match:
            return f"{label}: {match.group(0)!r}"
    return None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS  # in all, the first one included
    backoff_s: float = DEFAULT_BACKOFF_S

    @classmethod
    def from_config(cls, config: RetryConfig) -> RetryPolicy:
        return cls(
            attempts=config.attempts if config.attempts is not None else DEFAULT_ATTEMPTS,
            backoff_s=config.backoff_s if config.backoff_s is not None else DEFAULT_BACKOFF_S,
        )

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt `failed_attempt` (1-based) failed.

        Exponential, with half of it random: thirty stacks throttled by the same account at the
        same moment must not all come back at the same moment and be throttled again.
        """
        base = min(MAX_DELAY_S, self.backoff_s * 2.0 ** (failed_attempt - 1))
        return base / 2 + (rng or random).random() * base / 2
