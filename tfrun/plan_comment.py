"""The Markdown of the plan comment on a merge request (`tfrun ci comment`): pure functions
from the plan jobs' reports and plan texts to one body, cut to the site's length limit.

The body, in order: a hidden marker on the first line (how the next pipeline finds the note
to update), a title, the stacks that destroy or replace anything, `tfrun ci summary`'s table,
then each stack's plan text in a collapsed `<details>` section: stacks that destroy or replace
first, then stacks with other changes, then the rest, so a cut keeps what matters most.

Destroys and replacements: the report's count (`changes.destroy`) counts both, since
terraform replaces by destroying and creating. The plan text tells them apart and names the
resources (`# aws_instance.web must be replaced`, `# ... will be destroyed`); without a text
the count alone is shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tfrun import ci

MARKER_PREFIX = "<!-- tfrun:plan"
GITLAB_LIMIT = 1_000_000  # characters in a GitLab note
GITHUB_LIMIT = 65_536  # characters in a GitHub comment
# How many resources of one kind a stack's line names before "and N more".
NAMED = 10

# A resource's heading in `terraform show`'s text is indented two spaces; a line like it in
# an attribute's value (a heredoc) is indented further, and is not one.
_ACTION = re.compile(
    r"^  # (?P<address>\S.*?) "
    r"(?P<what>must be replaced|will be replaced\b.*|will be destroyed)\s*$",
    re.MULTILINE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_./@+-]+")


@dataclass(frozen=True)
class Context:
    key: str = "."  # which live root (or plan set) the note is for
    site: str = "GitLab"
    limit: int = GITLAB_LIMIT
    job_url: str | None = None  # the job whose log holds the whole text
    pipeline_url: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class Risk:
    destroyed: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comment:
    body: str  # what is posted: at most the context's limit
    full: str  # the whole text, for the job's log
    cut: bool


def marker(key: str) -> str:
    """The note's first line. The key keeps two live roots in one repository apart; it never
    holds `--`, which would end the HTML comment."""
    safe = re.sub("-{2,}", "-", _KEY_CHARS.sub("_", key.strip() or "."))
    return f"{MARKER_PREFIX} {safe} -->"


def is_ours(body: str, key: str) -> bool:
    """Whether a note's body is this key's plan comment: its first line is the marker (a
    person quoting the comment starts with `>`, so a quote never matches)."""
    return body.split("\n", 1)[0].strip() == marker(key)


def risk(text: str) -> Risk:
    """The resources a `terraform show` text destroys and replaces, in its order."""
    destroyed: list[str] = []
    replaced: list[str] = []
    for match in _ACTION.finditer(_ANSI.sub("", text)):
        kind = destroyed if match["what"] == "will be destroyed" else replaced
        kind.append(match["address"])
    return Risk(tuple(destroyed), tuple(replaced))


def render(
    reports: Mapping[str, Mapping[str, Any] | None],
    texts: Mapping[str, str],
    expected: Sequence[str],
    context: Context,
) -> Comment:
    entries = _entries(reports)
    head = [marker(context.key), _title(context)]
    blocks: list[_Block] = []
    callouts = _callouts(entries, texts)
    if callouts:
        blocks.append(_Text(callouts))
    blocks.append(_Text(ci.summary_text(reports, expected).rstrip("\n")))
    order = sorted(texts, key=lambda name: (_rank(entries.get(name), texts[name]), name))
    blocks += [_Section(name, entries.get(name), texts[name]) for name in order]
    untold = sorted(set(entries) - set(texts))
    if untold:
        blocks.append(_Text(f"No plan text for {_names(untold)}."))
    full = _join([*head, *(block.text for block in blocks)])
    if len(full) <= context.limit:
        return Comment(full, full, cut=False)
    return Comment(_cut(head, blocks, context), full, cut=True)


# ---------------------------------------------------------------------------- the parts


def _entries(reports: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Mapping[str, Any]]:
    """Each stack's entry in the reports, by the name the plan texts use (the report's)."""
    out: dict[str, Mapping[str, Any]] = {}
    for name, report in reports.items():
        stacks = (report or {}).get("stacks") or []
        for entry in stacks:
            if isinstance(entry, Mapping):
                out[name if len(stacks) == 1 else str(entry.get("path") or name)] = entry
    return out


def _destroy_count(entry: Mapping[str, Any] | None) -> int:
    changes = (entry or {}).get("changes")
    count = changes.get("destroy", 0) if isinstance(changes, Mapping) else 0
    return count if isinstance(count, int) else 0


def _changed(entry: Mapping[str, Any] | None) -> bool:
    changes = (entry or {}).get("changes")
    return isinstance(changes, Mapping) and any(changes.get(k) for k in ("add", "change"))


def _rank(entry: Mapping[str, Any] | None, text: str) -> int:
    found = risk(text)
    if found.destroyed or found.replaced or _destroy_count(entry):
        return 0
    return 1 if _changed(entry) else 2


def _title(context: Context) -> str:
    where = "" if context.key == "." else f" in {_code(context.key)}"
    about = [f"commit {_code(context.commit)}"] if context.commit else []
    if context.pipeline_url:
        about.append(f"[pipeline]({context.pipeline_url})")
    about.append("updated on every pipeline by `tfrun ci comment`")
    return f"### Terraform plan{where}\n\n{' · '.join(about)}"


def _callouts(entries: Mapping[str, Mapping[str, Any]], texts: Mapping[str, str]) -> str:
    lines = []
    for name in sorted(set(entries) | set(texts)):
        entry = entries.get(name)
        count = _destroy_count(entry)
        # The report counts what the plan destroys (a replacement included): a stack it says
        # destroys nothing is never called out, whatever its text holds.
        found = risk(texts.get(name, "")) if count or entry is None else Risk()
        parts = []
        if found.replaced:
            parts.append(f"replaces {_listed(found.replaced)}")
        if found.destroyed:
            parts.append(f"destroys {_listed(found.destroyed)}")
        if not parts and count:
            parts.append(f"destroys or replaces {count} (no plan text names them)")
        if parts:
            lines.append(f"- {_code(name)}: {'; '.join(parts)}")
    if not lines:
        return ""
    title = (
        "1 stack destroys or replaces resources"
        if len(lines) == 1
        else f"{len(lines)} stacks destroy or replace resources"
    )
    return f":warning: **{title}:**\n\n" + "\n".join(lines)


def _listed(addresses: Sequence[str]) -> str:
    shown = ", ".join(_code(a) for a in addresses[:NAMED])
    more = len(addresses) - NAMED
    return f"{shown} and {more} more" if more > 0 else shown


def _names(names: Sequence[str]) -> str:
    return ", ".join(_code(n) for n in names)


def _code(text: str) -> str:
    """Inline code that holds any text: a fence longer than the text's longest backtick run."""
    ticks = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _join(parts: Sequence[str]) -> str:
    return "\n\n".join(part for part in parts if part) + "\n"


# ---------------------------------------------------------------------------- the cut


class _Block:
    text: str

    def cut(self, room: int) -> str:
        """As much of the block as fits in `room` characters, whole lines; "" if none."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Text(_Block):
    text: str

    def cut(self, room: int) -> str:
        return _lines_within(self.text, room)


class _Section(_Block):
    CUT_LINE = "... (cut here: the whole plan is in the job's log)"

    def __init__(self, name: str, entry: Mapping[str, Any] | None, text: str) -> None:
        self.name = name
        changes = ci.changes_text((entry or {}).get("changes"))
        label = html.escape(f"{name}: {changes}" if changes else name)
        self.plan = _ANSI.sub("", text).strip("\n")
        self.fence = "`" * max(
            3, 1 + max((len(r) for r in re.findall(r"`+", self.plan)), default=0)
        )
        self.opening = f"<details><summary>{label}</summary>\n\n{self.fence}text\n"
        self.closing = f"\n{self.fence}\n\n</details>"
        self.text = self.opening + self.plan + self.closing

    def cut(self, room: int) -> str:
        room -= len(self.opening) + len(self.closing) + len(self.CUT_LINE) + 1
        if room <= 0:
            return ""
        kept = _lines_within(self.plan, room)
        return self.opening + (f"{kept}\n" if kept else "") + self.CUT_LINE + self.closing


def _lines_within(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    end = text.rfind("\n", 0, room + 1)
    return text[:end] if end > 0 else ""


def _cut(head: Sequence[str], blocks: Sequence[_Block], context: Context) -> str:
    where = f"[the job]({context.job_url})" if context.job_url else "the job"
    note = (
        f"**Cut at {context.site}'s limit of {context.limit:,} characters.** The whole text "
        f"is in the log of {where} that posted this comment."
    )
    kept = [*head, note]
    # Room for the separators and for the closing line that counts what was left out.
    room = context.limit - len(_join(kept)) - 200
    left_out = 0
    for index, block in enumerate(blocks):
        if len(block.text) + 2 <= room:
            kept.append(block.text)
            room -= len(block.text) + 2
            continue
        part = block.cut(room - 2)
        if part:
            kept.append(part)
        left_out = sum(isinstance(b, _Section) for b in blocks[index + 1 :])
        left_out += isinstance(block, _Section) and not part
        break
    if left_out:
        plans = "1 stack's plan is" if left_out == 1 else f"{left_out} stacks' plans are"
        kept.append(f"{plans} not shown here.")
    return _join(kept)
