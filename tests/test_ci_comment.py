"""`tfrun ci comment` against GitLab's notes API and GitHub's issue comments API, served on
127.0.0.1 as documented (tests/review_server.py): create, update in place, pages, failures,
the cut at the limit, and the token kept out of every message."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_cli, write_tree
from review_server import MERGE_REQUEST, PROJECT, PULL_REQUEST, REPOSITORY, ReviewServer, serving

from tfrun import plan_comment
from tfrun.cli import main
from tfrun.commands import comment

TOKEN = "glpat-s3cr3t-T0KEN-4f9a"
S = "staging-eu-west-1"
MARKER = plan_comment.marker("live")


def report(stack: str, add: int = 0, change: int = 0, destroy: int = 0) -> str:
    changes = {"add": add, "change": change, "destroy": destroy}
    return json.dumps({"stacks": [{"path": stack, "status": "succeeded", "changes": changes}]})


@pytest.fixture
def top(tmp_path: Path) -> Path:
    """A repository's top with one live root's plan files, as the plan jobs leave them."""
    write_tree(
        tmp_path,
        {
            f"live/.tfrun/ci/plan/{S}/network.json": report(f"{S}/network", add=1, destroy=1),
            f"live/.tfrun/ci/plan/{S}/network.txt": (
                "  # aws_instance.web must be replaced\n-/+ resource ...\n"
                "Plan: 1 to add, 0 to change, 1 to destroy.\n"
            ),
            f"live/.tfrun/ci/plan/{S}/app.json": report(f"{S}/app"),
            f"live/.tfrun/ci/plan/{S}/app.txt": "No changes.\n",
        },
    )
    return tmp_path


@pytest.fixture
def server() -> Iterator[ReviewServer]:
    with serving(TOKEN) as running:
        yield running


def gitlab_env(server: ReviewServer, **more: str) -> dict[str, str]:
    return {
        "CI_API_V4_URL": server.gitlab_api,
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": MERGE_REQUEST,
        "TFRUN_GITLAB_TOKEN": TOKEN,
        "CI_JOB_URL": "https://gitlab.example/acme/infra/-/jobs/123",
        "CI_PIPELINE_URL": "https://gitlab.example/acme/infra/-/pipelines/55",
        "CI_COMMIT_SHORT_SHA": "0a1b2c3d",
        **more,
    }


def github_env(server: ReviewServer, tmp_path: Path, **more: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    pull = {"number": PULL_REQUEST, "head": {"sha": "feedfacecafe0123"}}
    event.write_text(json.dumps({"action": "synchronize", "pull_request": pull}))
    return {
        "GITHUB_API_URL": server.github_api,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "777",
        **more,
    }


def cli(top: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = run_cli(["ci", "comment", "live/.tfrun/ci/plan", *args], top, {**os.environ, **env})
    return result.exit_code, result.stdout, result.stderr


def direct(
    top: Path,
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    *args: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str, str]:
    """The command in this process, through cli.main, with `env` as its only variables."""
    monkeypatch.chdir(top)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["ci", "comment", "live/.tfrun/ci/plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ours(server: ReviewServer) -> list[str]:
    notes = server.notes.values()
    return [n["body"] for n in notes if n["body"].startswith(MARKER) and not n["system"]]


# ---------------------------------------------------------------------------- GitLab


def test_gitlab_creates_the_note_then_updates_it_in_place(top: Path, server: ReviewServer) -> None:
    for n in range(130):  # two pages of other notes
        server.add(f"review remark {n}")
    server.add(f"> {MARKER}\n> quoted by a person")  # a quote is not the note
    server.add(f"{MARKER}\nadded by GitLab", system=True)  # nor is a system note

    code, out, err = cli(top, gitlab_env(server), "--expect", f"{S}/network")
    assert code == 0, err
    assert len(ours(server)) == 1
    assert server.methods() == ["GET", "GET", "POST"]  # every page read, then created
    assert [c.query.get("page") for c in server.calls[:2]] == ["1", "2"]
    assert all(c.query.get("per_page") == "100" for c in server.calls[:2])
    assert "created the plan note" in err and f"merge request !{MERGE_REQUEST}" in err
    body = ours(server)[0]
    assert out.strip() == body.strip()  # the job's log holds the text posted
    assert "replaces `aws_instance.web`" in body
    assert "https://gitlab.example/acme/infra/-/pipelines/55" in body
    posted = server.calls[-1]
    assert posted.headers["private-token"] == TOKEN

    # The next pipeline: the plan changed.
    (top / f"live/.tfrun/ci/plan/{S}/app.json").write_text(report(f"{S}/app", change=3))
    server.calls.clear()
    code, _, err = cli(top, gitlab_env(server))
    assert code == 0, err
    assert len(ours(server)) == 1
    assert "| staging-eu-west-1/app | succeeded | +0 ~3 -0 |" in ours(server)[0]
    assert server.methods()[-1] == "PUT" and "POST" not in server.methods()
    assert "updated the plan note" in err


def test_gitlab_finds_the_note_on_a_later_page(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    old = server.add(f"{MARKER}\nthe last pipeline's plan")
    for n in range(230):  # newer notes push it to page 3 (newest first)
        server.add(f"remark {n}")
    code, _, err = direct(top, gitlab_env(server), capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    assert [c.query.get("page") for c in server.calls if c.method == "GET"] == ["1", "2", "3"]
    assert server.calls[-1].method == "PUT"
    assert server.calls[-1].path.endswith(f"/notes/{old}")
    assert len(ours(server)) == 1 and "the last pipeline's plan" not in ours(server)[0]


def test_two_live_roots_keep_a_note_each(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    write_tree(top, {"other/.tfrun/ci/plan/x.json": report("x", add=1)})
    monkeypatch.chdir(top)
    for name, value in gitlab_env(server).items():
        monkeypatch.setenv(name, value)
    for _ in range(2):
        assert main(["ci", "comment", "live/.tfrun/ci/plan"]) == 0
        assert main(["ci", "comment", "other/.tfrun/ci/plan"]) == 0
    firsts = sorted(body.split("\n", 1)[0] for body in server.bodies())
    assert firsts == [plan_comment.marker("live"), plan_comment.marker("other")]


def test_without_a_merge_request_nothing_is_called(top: Path, server: ReviewServer) -> None:
    env = gitlab_env(server)
    del env["CI_MERGE_REQUEST_IID"]
    code, out, err = cli(top, env)
    assert code == 0
    assert "not a merge request pipeline (no CI_MERGE_REQUEST_IID); no note posted." in err
    assert out == "" and server.calls == []


def test_a_missing_token_is_exit_4_before_any_call(top: Path, server: ReviewServer) -> None:
    env = gitlab_env(server)
    del env["TFRUN_GITLAB_TOKEN"]
    code, _, err = cli(top, env)
    assert code == 4
    assert "TFRUN_GITLAB_TOKEN is not set" in err and "api scope" in err
    assert server.calls == []


def test_a_wrong_token_is_exit_4_and_never_shown(top: Path, server: ReviewServer) -> None:
    wrong = "glpat-wrong-0000-secret"
    code, out, err = cli(top, gitlab_env(server, TFRUN_GITLAB_TOKEN=wrong))
    assert code == 4
    assert "GitLab refused the token (401 Unauthorized)" in err
    assert f"GET {server.gitlab_api}/projects/{PROJECT}/merge_requests/7/notes" in err
    assert "TFRUN_GITLAB_TOKEN is wrong, expired or revoked" in err
    assert "Traceback" not in err
    # The server repeated the token it got; tfrun cut it out.
    assert "[token]" in err
    assert wrong not in out + err


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (403, 4, "GitLab forbade this (403 Forbidden)"),
        (404, 4, "GitLab found no merge request !7 of project 42 (404 Not Found)"),
        (500, 1, "GitLab failed (500 Internal Server Error)"),
        (502, 1, "GitLab failed (502 Bad Gateway)"),
        (429, 1, "GitLab failed (429 Too Many Requests)"),
    ],
)
def test_gitlab_refusals_and_failures(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, status: int, code: int, words: str,
) -> None:  # fmt: skip
    server.fail = status
    exit_code, out, err = direct(top, gitlab_env(server), capsys, monkeypatch=monkeypatch)
    assert exit_code == code
    assert words in err
    assert TOKEN not in out + err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    assert server.notes == {}


def test_an_unknown_project_is_a_404_naming_the_variables(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env = gitlab_env(server, CI_PROJECT_ID="41")
    code, _, err = direct(top, env, capsys, monkeypatch=monkeypatch)
    assert code == 4
    assert "404 Not Found" in err and "CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_exit_1_naming_the_url(top: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v4"
    env = {
        "CI_API_V4_URL": url,
        "CI_PROJECT_ID": PROJECT,
        "CI_MERGE_REQUEST_IID": MERGE_REQUEST,
        "TFRUN_GITLAB_TOKEN": TOKEN,
    }
    code, out, err = cli(top, env)
    assert code == 1
    assert f"could not reach GitLab at GET {url}/projects/42/" in err
    assert "(CI_API_V4_URL)" in err and "refused" in err.lower()
    assert TOKEN not in out + err
    # The whole text was printed before the call, so the log has it anyway.
    assert out.startswith(MARKER)


def test_a_redirect_is_not_followed_with_the_token(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    with serving("another") as elsewhere:
        server.redirect_to = elsewhere.url + "/api/v4/projects/42/merge_requests/7/notes"
        code, out, err = direct(top, gitlab_env(server), capsys, monkeypatch=monkeypatch)
        assert elsewhere.calls == []
    assert code == 4
    assert "redirect (301 Moved Permanently)" in err and "Set CI_API_V4_URL" in err
    assert TOKEN not in out + err


def test_gitlab_cuts_past_a_million_characters_and_links_the_job(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    line = "  ~ tags = { Name = " + "x" * 80 + " }\n"
    huge = "  # aws_s3_bucket.logs will be destroyed\n" + line * 12_000  # about 1.2 M
    (top / f"live/.tfrun/ci/plan/{S}/network.txt").write_text(huge)
    code, out, err = direct(top, gitlab_env(server), capsys, monkeypatch=monkeypatch)
    assert code == 0, err
    body = ours(server)[0]
    assert len(body) <= plan_comment.GITLAB_LIMIT < len(huge)
    assert "Cut at GitLab's limit of 1,000,000 characters." in body
    assert "[the job](https://gitlab.example/acme/infra/-/jobs/123)" in body
    assert "destroys `aws_s3_bucket.logs`" in body  # the call-out survives the cut
    assert body.count("<details>") == body.count("</details>")
    assert huge.strip() in out  # the log holds the whole plan
    assert "over GitLab's limit of 1,000,000" in err


# ---------------------------------------------------------------------------- GitHub


def test_github_creates_the_comment_then_updates_it(
    top: Path, server: ReviewServer, tmp_path: Path
) -> None:
    for n in range(150):  # oldest first: the comment, once made, is on page 2
        server.add(f"remark {n}")
    env = github_env(server, tmp_path)
    code, out, err = cli(top, env, "--github")
    assert code == 0, err
    assert out.startswith(MARKER)
    assert server.methods() == ["GET", "GET", "POST"]
    assert server.calls[1].query == {"per_page": "100", "page": "2"}  # from the Link header
    assert server.calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert server.calls[0].headers["accept"] == "application/vnd.github+json"
    assert "created the plan comment" in err and f"pull request #{PULL_REQUEST}" in err
    assert "commit `feedface`" in ours(server)[0]
    assert "https://github.example/acme/infra/actions/runs/777" in ours(server)[0]

    server.calls.clear()
    code, _, err = cli(top, env, "--github")
    assert code == 0, err
    assert server.methods() == ["GET", "GET", "PATCH"]
    assert server.calls[-1].path == f"/github/repos/{REPOSITORY}/issues/comments/1151"
    assert len(ours(server)) == 1 and "updated the plan comment" in err


def test_github_outside_a_pull_request_calls_nothing(
    top: Path, server: ReviewServer, tmp_path: Path
) -> None:
    env = github_env(server, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main"}))
    code, _, err = cli(top, env, "--github")
    assert code == 0
    assert "not a pull request's run" in err and server.calls == []


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (401, 4, "GitHub refused the token (401 Unauthorized)"),
        (403, 4, "permissions: pull-requests: write"),
        (404, 4, "GitHub found no pull request #9 in acme/infra (404 Not Found)"),
        (500, 1, "GitHub failed (500 Internal Server Error)"),
    ],
)
def test_github_refusals_and_failures(
    top: Path, server: ReviewServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, status: int, code: int, words: str,
) -> None:  # fmt: skip
    server.fail = status
    env = github_env(server, tmp_path)
    exit_code, out, err = direct(top, env, capsys, "--github", monkeypatch=monkeypatch)
    assert exit_code == code
    assert words in err
    assert TOKEN not in out + err and "[token]" in err  # the server echoed it


def test_github_wrong_token_is_refused(top: Path, server: ReviewServer, tmp_path: Path) -> None:
    code, out, err = cli(top, github_env(server, tmp_path, GITHUB_TOKEN="ghs_wrong"), "--github")
    assert code == 4 and "Bad credentials" in err and "ghs_wrong" not in out + err


def test_github_connection_refused(top: Path, tmp_path: Path, server: ReviewServer) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli(top, github_env(server, tmp_path, GITHUB_API_URL=url), "--github")
    assert code == 1 and f"could not reach GitHub at GET {url}/repos/" in err
    assert "(GITHUB_API_URL)" in err and TOKEN not in out + err


def test_github_next_page_elsewhere_is_not_sent_the_token(
    top: Path, server: ReviewServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for n in range(120):
        server.add(f"remark {n}")
    server.next_link_base = "http://127.0.0.1:9"
    env = github_env(server, tmp_path)
    code, _, err = direct(top, env, capsys, "--github", monkeypatch=monkeypatch)
    assert code == 1 and "outside GITHUB_API_URL" in err
    assert server.methods() == ["GET"]


def test_github_cuts_at_65536_characters_and_links_the_run(
    top: Path, server: ReviewServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for stack in ("a", "b", "c"):
        write_tree(
            top,
            {
                f"live/.tfrun/ci/plan/{stack}.json": report(stack, add=500),
                f"live/.tfrun/ci/plan/{stack}.txt": "  + resource ...\n" * 2_500,
            },
        )
    env = github_env(server, tmp_path)
    code, out, err = direct(top, env, capsys, "--github", monkeypatch=monkeypatch)
    assert code == 0, err
    body = ours(server)[0]
    assert len(body) <= 65_536
    assert "Cut at GitHub's limit of 65,536 characters." in body
    assert "[the job](https://github.example/acme/infra/actions/runs/777)" in body
    assert "2 stacks' plans are not shown here." in body
    assert out.count("<details>") == 5  # the log has every plan


def test_the_key_is_the_live_root_below_the_current_folder(tmp_path: Path) -> None:
    reports = tmp_path / "infra/live/.tfrun/ci/plan"
    nested = reports / "prod/network.json"
    nested.parent.mkdir(parents=True)
    nested.write_text("{}")
    assert comment.default_key([reports], tmp_path) == "infra/live"
    assert comment.default_key([nested], tmp_path) == "infra/live"
    assert comment.default_key([reports], tmp_path / "infra/live") == "."
    assert comment.default_key([tmp_path / "infra"], tmp_path) == "infra"


def test_a_missing_report_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ci", "comment", str(tmp_path / "nowhere")]) == 4
    assert "nowhere: no such file or folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the other errors


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"CI_PROJECT_ID": ""}, "CI_PROJECT_ID is not set; GitLab sets it in its jobs."),
        ({"CI_API_V4_URL": ""}, "CI_API_V4_URL is not set"),
        ({"CI_API_V4_URL": "file:///etc/passwd"}, "is not an http(s) URL"),
    ],
)
def test_gitlab_variables_that_are_missing_or_wrong(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], words: str,
) -> None:  # fmt: skip
    code, _, err = direct(top, gitlab_env(server, **change), capsys, monkeypatch=monkeypatch)
    assert code == 4 and words in err and server.calls == []


@pytest.mark.parametrize(
    ("change", "event", "words"),
    [
        ({"GITHUB_REPOSITORY": "infra"}, None, "GITHUB_REPOSITORY is 'infra'; GitHub sets it"),
        ({"GITHUB_TOKEN": ""}, None, "GITHUB_TOKEN is not set"),
        ({}, "{not json", "GITHUB_EVENT_PATH names"),
    ],
)
def test_github_variables_that_are_missing_or_wrong(
    top: Path, server: ReviewServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], event: str | None, words: str,
) -> None:  # fmt: skip
    env = github_env(server, tmp_path, **change)
    if event is not None:
        Path(env["GITHUB_EVENT_PATH"]).write_text(event)
    code, _, err = direct(top, env, capsys, "--github", monkeypatch=monkeypatch)
    assert code == 4 and words in err and server.calls == []


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ("<html>sign in</html>", "with something that is not JSON (status 200)"),
        ('{"message": "a mapping"}', "with something that is not a list of comments"),
    ],
)
def test_an_answer_that_is_not_the_api_is_exit_1(
    top: Path, server: ReviewServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, reply: str, words: str,
) -> None:  # fmt: skip
    server.reply_text = reply
    code, _, err = direct(top, gitlab_env(server), capsys, monkeypatch=monkeypatch)
    assert code == 1 and words in err and "is CI_API_V4_URL the API's URL?" in err


def test_another_refusal_names_the_status(
    top: Path, server: ReviewServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    server.fail = 422
    env = github_env(server, tmp_path)
    code, out, err = direct(top, env, capsys, "--github", monkeypatch=monkeypatch)
    assert code == 4 and "GitHub refused GET" in err and "(422 Unprocessable Entity)" in err
    assert TOKEN not in out + err


def test_a_server_that_never_answers_times_out(
    top: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tfrun import review_api

    monkeypatch.setattr(review_api, "TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {
            "CI_API_V4_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/api/v4",
            "CI_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_IID": MERGE_REQUEST,
            "TFRUN_GITLAB_TOKEN": TOKEN,
        }
        code, out, err = direct(top, env, capsys, monkeypatch=monkeypatch)
    assert code == 1 and "could not reach GitLab" in err and "timed out" in err
    assert TOKEN not in out + err
