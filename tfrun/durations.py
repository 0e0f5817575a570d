"""Lengths of time as people write them ("30m", "1h30m") and as tfrun shows them."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """ "90", "90s", "30m", "1h30m" as a number of seconds above 0; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is no duration; write it like 90s, 30m or 1h30m")
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + float(match["s"] or 0)
    if seconds <= 0:
        raise ValueError(f"{text!r}: a time limit is more than 0 seconds")
    return seconds


def show(seconds: float) -> str:
    """1.2s, 59.9s, 1m02s, 75m00s: short for a stack, exact enough for a log."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"
