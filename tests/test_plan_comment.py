"""The plan comment's Markdown (tfrun/plan_comment.py): destroys and replacements called out,
the summary table, one collapsed section per plan, and the cut at the site's limit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrun import plan_comment
from tfrun.plan_comment import Context, Risk, render, risk

S = "staging-eu-west-1"
# `terraform show -no-color tfplan` (1.11) of a plan that destroys one resource, replaces one
# because an argument forces it and one because -replace asked, and creates one.
SHOWN = """
Terraform used the selected providers to generate the following execution
plan. Resource actions are indicated with the following symbols:
  + create
  - destroy
-/+ destroy and then create replacement

Terraform will perform the following actions:

  # terraform_data.gone will be destroyed
  # (because terraform_data.gone is not in configuration)
  - resource "terraform_data" "gone" {
      - input  = "x" -> null
    }

  # terraform_data.keep will be replaced, as requested
-/+ resource "terraform_data" "keep" {
      ~ input  = "a" -> "b"
    }

  # terraform_data.new will be created
  + resource "terraform_data" "new" {
      + input  = "y"
    }

  # module.db["main db"].aws_db_instance.this must be replaced
-/+ resource "aws_db_instance" "this" {
      ~ engine_version = "15" -> "16" # forces replacement
    }

Plan: 3 to add, 0 to change, 3 to destroy.
"""


def entry(stack: str, add: int = 0, change: int = 0, destroy: int = 0) -> dict[str, Any]:
    changes = {"add": add, "change": change, "destroy": destroy}
    return {"stacks": [{"path": stack, "status": "succeeded", "changes": changes}]}


def test_risk_tells_destroys_from_replacements() -> None:
    assert risk(SHOWN) == Risk(
        destroyed=("terraform_data.gone",),
        replaced=("terraform_data.keep", 'module.db["main db"].aws_db_instance.this'),
    )
    assert risk("\x1b[1m  # aws_instance.web\x1b[0m must be replaced\n").replaced == (
        "aws_instance.web",
    )
    assert risk("No changes. Your infrastructure matches the configuration.\n") == Risk()


def test_a_heading_inside_a_value_or_a_plan_that_destroys_nothing_is_no_risk() -> None:
    """Found in a trial: a heredoc's line that reads like a heading, in a plan of +0 ~1 -0."""
    text = (
        "  # aws_instance.web will be updated in-place\n"
        '  ~ resource "aws_instance" "web" {\n'
        "      ~ user_data = <<-EOT\n"
        "            # aws_db_instance.fake will be destroyed\n"
        "        EOT\n"
        "    }\n"
    )
    assert risk(text) == Risk()
    heading = "  # aws_db_instance.fake will be destroyed\n"
    comment = render({"s": entry("s", change=1)}, {"s": heading}, ["s"], Context(key="live"))
    assert ":warning:" not in comment.body


@pytest.mark.slow
def test_risk_reads_real_terraform_show_output(tmp_path: Path) -> None:
    """The phrases come from terraform itself: plan with the built-in terraform_data, which
    needs no provider download, and read `terraform show -no-color`."""
    env = {"TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "PATH": os.environ["PATH"]}

    def terraform(*args: str) -> str:
        done = subprocess.run(
            ["terraform", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    main = tmp_path / "main.tf"
    main.write_text(
        'resource "terraform_data" "keep" { input = "a" }\n'
        'resource "terraform_data" "swap" { triggers_replace = ["one"] }\n'
        'resource "terraform_data" "gone" { input = "x" }\n'
    )
    terraform("init", "-no-color")
    terraform("apply", "-auto-approve", "-no-color")
    main.write_text(
        'resource "terraform_data" "keep" { input = "b" }\n'
        'resource "terraform_data" "swap" { triggers_replace = ["two"] }\n'
    )
    terraform("plan", "-no-color", "-out=tfplan", "-replace=terraform_data.keep")
    found = risk(terraform("show", "-no-color", "tfplan"))
    assert found == Risk(
        destroyed=("terraform_data.gone",),
        replaced=("terraform_data.keep", "terraform_data.swap"),
    )


def test_destroys_and_replacements_come_first() -> None:
    reports = {
        f"{S}/db": entry(f"{S}/db", add=3, destroy=3),
        f"{S}/app": entry(f"{S}/app", destroy=2),  # no plan text: the count only
        f"{S}/web": entry(f"{S}/web", change=1),
    }
    texts = {f"{S}/db": SHOWN, f"{S}/web": "  ~ update in-place\n"}
    body = render(reports, texts, [], Context(key="live")).body
    call_out = body.index(":warning: **2 stacks destroy or replace resources:**")
    assert call_out < body.index("| stack | plan | changes |")
    assert f"- `{S}/app`: destroys or replaces 2 (no plan text names them)" in body
    assert (
        f"- `{S}/db`: replaces `terraform_data.keep`, "
        '`module.db["main db"].aws_db_instance.this`; destroys `terraform_data.gone`'
    ) in body
    assert f"`{S}/web`" not in body.split("| stack |")[0]
    assert f"No plan text for `{S}/app`." in body


def test_nothing_to_call_out() -> None:
    body = render({"a": entry("a", add=1)}, {"a": "+"}, [], Context()).body
    assert ":warning:" not in body
    # The key "." (the live root is the current folder) is not named in the title.
    assert body.startswith("<!-- tfrun:plan . -->\n\n### Terraform plan\n")


def test_each_plan_is_a_collapsed_section_risky_first() -> None:
    reports = {
        "a-quiet": entry("a-quiet"),
        "b-changed": entry("b-changed", add=1),
        "c-destroys": entry("c-destroys", destroy=1),
    }
    texts = {name: f"plan of {name}\n" for name in reports}
    body = render(reports, texts, [], Context()).body
    summaries = [line for line in body.splitlines() if line.startswith("<details>")]
    assert summaries == [
        "<details><summary>c-destroys: +0 ~0 -1</summary>",
        "<details><summary>b-changed: +1 ~0 -0</summary>",
        "<details><summary>a-quiet: +0 ~0 -0</summary>",
    ]
    assert "```text\nplan of b-changed\n```\n\n</details>" in body
    assert body.count("</details>") == 3


def test_expected_stacks_without_a_report_are_listed() -> None:
    body = render({"a": entry("a")}, {}, ["a", f"{S}/missing"], Context()).body
    assert f"| {S}/missing | no report (the plan job did not run or failed early) |  |" in body
    assert "2 stacks, 0 with changes." in body


def test_names_and_texts_cannot_break_the_markdown() -> None:
    text = "  ~ user_data = <<-EOT\n    ```sh\n    echo hi\n    ```\n  EOT\n"
    body = render({"a<b>": entry("a<b>", change=1)}, {"a<b>": text}, [], Context()).body
    assert "<summary>a&lt;b&gt;: +0 ~1 -0</summary>" in body
    # A longer fence than any run of backticks in the plan, so the plan cannot close it.
    assert "\n````text\n" in body and "\n````\n\n</details>" in body
    assert plan_comment._code("a`b") == "``a`b``"


def test_the_marker_is_the_first_line_and_keyed() -> None:
    assert plan_comment.marker("live") == "<!-- tfrun:plan live -->"
    assert plan_comment.marker("a--b -->") == "<!-- tfrun:plan a-b_-_ -->"
    assert "--" not in plan_comment.marker("x---->y")[4:-3]
    body = render({}, {}, [], Context(key="live")).body
    assert plan_comment.is_ours(body, "live")
    assert plan_comment.is_ours(body.replace("\n", "\r\n"), "live")
    assert not plan_comment.is_ours(body, "other")
    assert not plan_comment.is_ours("> " + body, "live")
    assert not plan_comment.is_ours("see <!-- tfrun:plan live -->", "live")


def test_a_body_within_the_limit_is_not_cut() -> None:
    reports = {"a": entry("a", add=1)}
    whole = render(reports, {"a": "x\n" * 100}, [], Context(limit=10_000))
    assert not whole.cut and whole.body == whole.full


def test_the_cut_keeps_the_head_and_links_the_job() -> None:
    reports = {name: entry(name, add=1) for name in ("a", "b", "c")}
    texts = {name: f"{name} line\n" * 400 for name in reports}
    context = Context(site="GitHub", limit=3_000, job_url="https://ci.example/jobs/9")
    comment = render(reports, texts, [], context)
    assert comment.cut and len(comment.body) <= 3_000 < len(comment.full)
    assert comment.body.startswith(plan_comment.marker("."))
    assert "**Cut at GitHub's limit of 3,000 characters.**" in comment.body
    assert "[the job](https://ci.example/jobs/9)" in comment.body
    assert "| c | succeeded | +1 ~0 -0 |" in comment.body  # the table is whole
    assert "... (cut here: the whole plan is in the job's log)" in comment.body
    assert "2 stacks' plans are not shown here." in comment.body
    assert comment.full.count("<details>") == 3


@settings(max_examples=150)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=4_000), min_size=0, max_size=6),
    limit=st.integers(min_value=900, max_value=12_000),
    line=st.integers(min_value=1, max_value=300),
)
def test_the_cut_always_fits_and_stays_well_formed(sizes: list[int], limit: int, line: int) -> None:
    names = [f"{S}/stack-{n}" for n in range(len(sizes))]
    reports = {name: entry(name, add=1, destroy=n % 2) for n, name in enumerate(names)}
    texts = {
        name: ("y" * line + "\n") * (size // (line + 1))
        for name, size in zip(names, sizes, strict=True)
    }
    comment = render(reports, texts, [], Context(limit=limit, job_url="https://j/1"))
    assert len(comment.body) <= limit
    assert comment.body.startswith(plan_comment.marker(".") + "\n")
    assert comment.body.count("<details>") == comment.body.count("</details>")
    assert comment.body.count("\n```") % 2 == 0
    if comment.cut:
        assert "https://j/1" in comment.body
    else:
        assert comment.body == comment.full
