"""The docs cannot drift from the code: every page is in the index, every relative link (and
its #anchor) resolves, every `tfrun ...` in a shell block parses with tfrun's own parser, and the
pages written to be followed (docs/getting-started.md) are run for real.

Conventions in README.md and docs/*.md, read by this test:

* A fenced block tagged `sh`, `bash` or `console` is a shell block; each `tfrun` command in it
  (in a `console` block, on the lines that start with `$ `) must name a real command and only
  options it has. Paths in it are examples: they need not exist.
* `<!-- test: file PATH -->` on the line before a fenced block: the test writes the block's text
  to PATH, relative to the folder the page starts in.
* `<!-- test: run -->` on the line before a shell block: the test runs it with bash
  (`set -eu`), after writing the page's files; the run blocks of one page run in order, as one
  script, in an empty temporary folder, with `tfrun` on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_environ

from tfrun import cli, tfargs
from tfrun.commands.run_args import parse_run
from tfrun.discovery import REGION
from tfrun.errors import UsageError

DOCS = REPO_ROOT / "docs"
INDEX = DOCS / "index.md"
README = REPO_ROOT / "README.md"
SHELL_LANGUAGES = frozenset({"sh", "bash", "console"})
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_MARK = re.compile(r"^<!--\s*test:\s*(?P<what>run|file)\s*(?P<arg>\S*)\s*-->\s*$")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
# Words a shell treats as the end of a command.
_SHELL_OPERATORS = re.compile(r"^[;&|<>()]+$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # where the block's text starts, 1-based
    lang: str
    text: str
    mark: str | None  # "run", "file", or None
    mark_arg: str


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        mark = _MARK.match(lines[i - 1]) if i else None
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        found.append(
            Block(
                page=page,
                line=i + 2,
                lang=fence["lang"],
                text="\n".join(lines[i + 1 : end]) + "\n",
                mark=mark["what"] if mark else None,
                mark_arg=mark["arg"] if mark else "",
            )
        )
        i = end + 1
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks (a link or heading in a code sample is no link)."""
    kept: list[str] = []
    inside = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            kept.append(line)
    return "\n".join(kept)


def anchors(page: Path) -> set[str]:
    """The #anchors GitHub makes of a page's headings."""
    found: set[str] = set()
    for line in prose(page).splitlines():
        heading = _HEADING.match(line)
        if heading is None:
            continue
        text = heading["text"].lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        candidate, n = slug, 1
        while candidate in found:
            candidate, n = f"{slug}-{n}", n + 1
        found.add(candidate)
    return found


def relative_links(page: Path) -> list[str]:
    return [
        match["target"]
        for match in _LINK.finditer(prose(page))
        if not re.match(r"^[a-z][a-z+.-]*:", match["target"])
    ]


# ------------------------------------------------------------------------------ the index


def test_every_page_in_docs_is_linked_from_the_index() -> None:
    linked = {
        (INDEX.parent / target.partition("#")[0]).resolve() for target in relative_links(INDEX)
    }
    missing = [
        str(page.relative_to(REPO_ROOT))
        for page in pages()
        if page != INDEX and page.resolve() not in linked
    ]
    assert not missing, f"docs/index.md does not link to: {', '.join(missing)}"


@pytest.mark.parametrize("page", [README, *pages()], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_and_their_anchors_resolve(page: Path) -> None:
    broken: list[str] = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading makes #{anchor}")
    assert not broken, f"{page.relative_to(REPO_ROOT)}: " + "; ".join(broken)


def test_the_link_check_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Use `--env` here\n\n[a](page.md#use---env-here) [b](gone.md) "
        "[c](#no-such) [d](https://example.invalid/x)\n\n```sh\n[e](also-gone.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(page) == ["page.md#use---env-here", "gone.md", "#no-such"]
    assert anchors(page) == {"title", "use---env-here"}


# ------------------------------------------------------------------------- tfrun commands


def tfrun_commands(block: Block) -> list[list[str]]:
    """Each `tfrun ...` in a shell block, as its words, up to the end of its command."""
    commands: list[list[str]] = []
    text = block.text.replace("\\\n", " ")
    for line in text.splitlines():
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for start, word in enumerate(words):
            if word != "tfrun" or (start and words[start - 1] in ("pip", "install")):
                continue
            command: list[str] = []
            for rest in words[start + 1 :]:
                if _SHELL_OPERATORS.match(rest):
                    break
                command.append(rest)
            commands.append(command)
    return commands


def parse_problem(argv: list[str], cwd: Path) -> str | None:
    """Why tfrun's own parsers reject `tfrun ARGV`, or None. Paths the line names are created
    under `cwd` first: the docs' paths are examples, the commands and options are what count."""
    words = [word for word in argv if word != "--debug"]
    if not words or words[0] in ("-h", "--help", "help", "--version"):
        return None
    try:
        if words[0] in cli.OWN_COMMANDS:
            if "-h" not in words and "--help" not in words:
                cli._own_parser().parse_args(argv)
            return None
        for word in argv:
            plain = not word.startswith(("-", "/", "$")) and "=" not in word
            if plain and ("/" in word or REGION.fullmatch(word)):
                (cwd / word).mkdir(parents=True, exist_ok=True)
        args = parse_run(argv, cwd)
    except UsageError as exc:
        return str(exc)
    if args.help:
        return None
    operation = tfargs.classify(args.command, args.tf_args, {})
    if "which tfrun does not know" in operation.description:
        return f"'{args.command}' is neither a tfrun command nor a terraform command"
    return None


def shell_blocks() -> list[Block]:
    return [
        block
        for page in [README, *pages()]
        for block in blocks(page)
        if block.lang in SHELL_LANGUAGES
    ]


def test_every_tfrun_command_in_a_shell_block_parses(tmp_path: Path) -> None:
    problems: list[str] = []
    seen = 0
    for block in shell_blocks():
        for argv in tfrun_commands(block):
            seen += 1
            cwd = tmp_path / str(seen)
            cwd.mkdir()
            problem = parse_problem(argv, cwd)
            if problem is not None:
                where = f"{block.page.relative_to(REPO_ROOT)}:{block.line}"
                problems.append(f"{where}: tfrun {shlex.join(argv)}: {problem}")
    assert seen > 30, f"only {seen} tfrun commands found in shell blocks: is the extraction broken?"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ("tfrun plan --envv prod", "--envv"),
        ("tfrun run-all aply --env staging", "'aply' is neither"),
        ("tfrun graph --format svg", "invalid choice"),
        ("tfrun affected --base origin/main --dependents", "unrecognized arguments"),
        ("tfrun drift --paralellism 2", "unrecognized arguments"),
    ],
)
def test_a_wrong_command_or_option_is_caught(tmp_path: Path, line: str, wanted: str) -> None:
    block = Block(Path("x.md"), 1, "sh", f"cd live && {line} | tee out.txt\n", None, "")
    (argv,) = tfrun_commands(block)
    problem = parse_problem(argv, tmp_path)
    assert problem is not None and wanted in problem, problem


def test_commands_are_cut_at_shell_operators_and_comments() -> None:
    block = Block(
        Path("x.md"),
        1,
        "console",
        '$ for s in $(tfrun affected --base origin/main --format paths); do tfrun plan "$s"; done\n'
        "tfrun apply  # not a command: no '$ ' in a console block\n"
        "$ tfrun output -raw vpc_id   # the VPC\n",
        None,
        "",
    )
    assert tfrun_commands(block) == [
        ["affected", "--base", "origin/main", "--format", "paths"],
        ["plan", "$s"],
        ["output", "-raw", "vpc_id"],
    ]


# ------------------------------------------------------------------- pages run for real


def runnable_pages() -> list[Path]:
    return [page for page in pages() if any(block.mark == "run" for block in blocks(page))]


def test_getting_started_is_run() -> None:
    assert DOCS / "getting-started.md" in runnable_pages()


def tfrun_on_path(folder: Path) -> Path:
    """A folder with a `tfrun` command that runs this checkout's tfrun (PYTHONPATH from
    cli_environ) with the tests' Python."""
    folder.mkdir()
    script = folder / "tfrun"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tfrun "$@"\n')
    script.chmod(0o755)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: p.name)
def test_a_page_runs_as_written(
    page: Path, tmp_path: Path, terraform_cli_config: Path, plugin_cache_dir: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = ["set -eu"]
    for block in blocks(page):
        if block.mark == "file":
            assert block.mark_arg, f"{page}:{block.line}: <!-- test: file --> names no path"
            target = work / block.mark_arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif block.mark == "run":
            assert block.lang in SHELL_LANGUAGES, f"{page}:{block.line}: not a shell block"
            script.append(block.text)
    tfrun = tfrun_on_path(tmp_path / "bin") / "tfrun"
    env = cli_environ()
    env.update(
        {
            "PATH": os.pathsep.join([str(tfrun.parent), env["PATH"]]),
            # The provider comes from the mirror, as the page's last section says.
            "TF_CLI_CONFIG_FILE": str(terraform_cli_config),
            "TF_PLUGIN_CACHE_DIR": str(plugin_cache_dir),
            "CHECKPOINT_DISABLE": "1",
        }
    )
    try:
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        # A page that failed halfway leaves its sandbox running: stop it.
        for record in work.rglob(".tfrun/sandbox/sandbox.json"):
            subprocess.run(
                [str(tfrun), "sandbox", "down"],
                cwd=record.parents[2],
                env=env,
                capture_output=True,
                check=False,
                timeout=120,
            )
    # terraform's output in the foreground (one stack named on its own) may be coloured.
    stdout = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    output = stdout + re.sub(r"\x1b\[[0-9;]*m", "", done.stderr)
    assert done.returncode == 0, f"{page.name} failed (exit {done.returncode}):\n{output}"
    if page.name == "getting-started.md":
        assert "Plan: 1 to add, 0 to change, 0 to destroy." in output, output
        assert re.search(r"^vpc-[0-9a-f]+$", stdout, re.M), output
        assert "sandbox stopped" in output, output
