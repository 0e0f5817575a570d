"""A run's scope is exactly what the person named, through the real CLI: a path that does not
exist, a two-dash option that is not tfrun's, an empty command or a help flag never becomes a
wider run. Each refusal exits 4 (help exits 0), starts no terraform and writes no file; the
terraform arguments that only resemble these still reach terraform unchanged.

`--terraform-bin` points at a fake terraform that records each call, so a test would see one
that started. Refusals run `cli.main` in-process; the runs that do start terraform run the CLI
in a subprocess, as a person would.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import root_hcl, run_cli, write_tree

from tfrun.cli import main
from tfrun.commands.run_args import RUN_OPTIONS

STAGING = "staging-eu-west-1/network"
PROD = "prod-eu-west-1/network"
STACKS = (PROD, STAGING, "staging-eu-west-1/data", "shared-services/iam")

FAKE_TERRAFORM = """\
#!{python} -S
# A terraform that records each call (one JSON line) and succeeds.
import json, os, sys
with open({calls!r}, "a", encoding="utf-8") as calls:
    calls.write(json.dumps({{"cwd": os.getcwd(), "args": sys.argv[1:]}}) + "\\n")
"""


@dataclass(frozen=True)
class Repo:
    top: Path  # the repository; the live root is its `live` folder
    terraform: Path
    calls: Path

    @property
    def live(self) -> Path:
        return self.top / "live"

    def recorded(self) -> list[dict[str, object]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text(encoding="utf-8").splitlines()]

    def snapshot(self) -> dict[str, bytes | None]:
        """Every path under the repository: a file's bytes, a folder's presence."""
        return {
            path.relative_to(self.top).as_posix(): path.read_bytes() if path.is_file() else None
            for path in sorted(self.top.rglob("*"))
        }


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    files = {"live/tfrun.hcl": root_hcl()}
    files.update({f"live/{s}/main.tf": 'output "vpc_id" { value = "x" }\n' for s in STACKS})
    top = write_tree(tmp_path / "infra", files)
    calls = tmp_path / "calls.jsonl"
    terraform = tmp_path / "bin" / "terraform"
    terraform.parent.mkdir()
    terraform.write_text(FAKE_TERRAFORM.format(python=sys.executable, calls=str(calls)))
    terraform.chmod(0o755)
    return Repo(top, terraform, calls)


def _refused(
    repo: Repo,
    argv: list[str],
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Run `tfrun ARGV` in `where` (relative to the repository), expect exit 4 with nothing
    started or written, and return the message on one line."""
    monkeypatch.chdir(repo.top / where)
    before = repo.snapshot()
    assert main([*argv, "--terraform-bin", str(repo.terraform)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("tfrun: error: ") and "Traceback" not in err
    assert repo.recorded() == []
    assert repo.snapshot() == before
    return " ".join(err.split())


# ---------------------------------------------------------------------------------------------
# 1. A path that does not exist.


# (where tfrun runs, its arguments, the argument that names nothing, the suggestion)
MISSING_PATHS = [
    ("live", ["plan", "staging-eu-west-1/netwrok"], 1, "staging-eu-west-1/network"),
    ("live", ["run-all", "plan", "staging-eu-west-1/netwrok/"], 2, "staging-eu-west-1/network"),
    ("live", ["plan", "prod-eu-west-2"], 1, "prod-eu-west-1"),  # like an environment folder
    ("live", ["plan", "-target=x", "./prod-eu-west-1/netwrok"], 2, PROD),
    ("live", ["plan", "shared-servics/iam"], 1, "shared-services/iam"),
    ("live/staging-eu-west-1", ["plan", "netwrok/"], 1, "network"),
    (f"live/{STAGING}", ["apply", "--yes", "../../prod-eu-west-1/netwrk"], 2, f"../../{PROD}"),
    (".", ["plan", "shared-services"], 1, "live/shared-services"),  # a folder of the live root
    (".", ["plan", STAGING], 1, f"live/{STAGING}"),  # relative to the live root, not here
    ("live", ["plan", PROD, "staging-eu-west-1/netwrok"], 2, "staging-eu-west-1/network"),
    (f"live/{STAGING}", ["apply", "--yes", "plans/tfplan"], 2, ""),  # nothing close
]


@pytest.mark.parametrize(
    ("where", "argv", "at", "suggestion"),
    MISSING_PATHS,
    ids=[f"{where}: {' '.join(argv)}" for where, argv, _, _ in MISSING_PATHS],
)
def test_a_path_that_does_not_exist_is_an_error_with_the_nearest_stacks(
    repo: Repo,
    where: str,
    argv: list[str],
    at: int,
    suggestion: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = argv[at]
    message = _refused(repo, argv, where, monkeypatch, capsys)
    assert message.startswith(f"tfrun: error: {typed}: there is no such folder or file in ")
    assert str((repo.top / where).resolve()) in message
    if suggestion:
        assert f"Did you mean {suggestion}?" in message
    else:
        assert "Did you mean" not in message
    assert f"-- {typed})" in message  # how to hand it to terraform as it is


@pytest.mark.parametrize("link", ["gone", "loop1"])
def test_a_symbolic_link_that_leads_nowhere_is_an_error(
    repo: Repo, link: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_dir = repo.live / "staging-eu-west-1"
    (env_dir / "gone").symlink_to("nothing-here")
    (env_dir / "loop1").symlink_to("loop2")
    (env_dir / "loop2").symlink_to("loop1")
    for named in (f"staging-eu-west-1/{link}", link):  # a plain word too: it is a link
        where = "live" if "/" in named else "live/staging-eu-west-1"
        message = _refused(repo, ["plan", named], where, monkeypatch, capsys)
        assert message.startswith(f"tfrun: error: {named}: this symbolic link in ")
        assert "leads nowhere (or round in a loop)" in message


# (tfrun's arguments in a stack, the end of what terraform must get)
LOOKALIKES = [
    (["apply", "--yes", "tfplan"], ["tfplan"]),  # a plan file, even one not there
    (["apply", "--yes", "plans/tfplan"], ["plans/tfplan"]),  # an existing file
    (["state", "rm", "module.vpc.aws_vpc.this"], ["rm", "module.vpc.aws_vpc.this"]),
    (["state", "rm", "module.app-eu-west-1"], ["rm", "module.app-eu-west-1"]),
    (["state", "rm", 'aws_s3_object.o["a/b"]'], ["rm", 'aws_s3_object.o["a/b"]']),
    (
        ["import", "aws_iam_role.x", "arn:aws:iam::123456789012:role/foo"],
        ["aws_iam_role.x", "arn:aws:iam::123456789012:role/foo"],
    ),
    (
        ["import", "aws_route_table_association.a", "subnet-0a1b/rtb-0c2d"],
        ["aws_route_table_association.a", "subnet-0a1b/rtb-0c2d"],
    ),
    (["output", "-raw", "vpc_id"], ["-raw", "vpc_id"]),
    (["plan", "-var-file", "vars/none.tfvars"], ["-var-file", "vars/none.tfvars"]),
    (["plan", "-var", "path=a/b"], ["-var", "path=a/b"]),
    (["validate", "--", "--envv", "x/y"], ["--envv", "x/y"]),
]


@pytest.mark.parametrize(
    ("argv", "terraform_args"), LOOKALIKES, ids=[" ".join(argv) for argv, _ in LOOKALIKES]
)
def test_terraform_arguments_that_resemble_paths_reach_terraform(
    repo: Repo, argv: list[str], terraform_args: list[str]
) -> None:
    stack = repo.live / STAGING
    write_tree(stack, {"plans/tfplan": "a saved plan\n"})
    cut = argv.index("--") if "--" in argv else len(argv)
    args = [*argv[:cut], "--terraform-bin", str(repo.terraform), *argv[cut:]]

    run_cli(args, stack).assert_success()

    commands = [c for c in repo.recorded() if c["args"][:1] != ["init"]]
    assert len(commands) == 1, repo.recorded()
    called = commands[0]["args"]
    assert isinstance(called, list) and called[0] == argv[0]
    assert called[-len(terraform_args) :] == terraform_args
    assert commands[0]["cwd"] == str(stack)  # the stack the person is in, no other


# ---------------------------------------------------------------------------------------------
# 2. A two-dash option that is not tfrun's.


@pytest.mark.parametrize(
    ("argv", "meant"),
    [
        (["run-all", "validate", "--envv", "staging"], "--env"),
        (["run-all", "validate", "--envv=staging"], "--env"),
        (["--envv", "staging", "run-all", "validate"], "--env"),
        (["run-all", "validate", "--paralelism", "2"], "--parallelism"),
        (["plan", "-no-color", "--includ", "data"], "--include"),
        (["apply", "--destroy", "--yes"], None),
    ],
)
def test_an_option_that_is_not_tfrun_s_is_an_error_wherever_it_is(
    repo: Repo,
    argv: list[str],
    meant: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = next(a for a in argv if a.startswith("--")).partition("=")[0]
    message = _refused(repo, argv, "live", monkeypatch, capsys)
    assert message.startswith(f"tfrun: error: {wrong} is not a tfrun option")
    if meant:
        assert f"did you mean {meant}?" in message
    else:
        assert "did you mean" not in message
    assert "start with one dash" in message and "or go after --" in message


# ---------------------------------------------------------------------------------------------
# 3. Help.


def _assert_lists_every_option(text: str) -> None:
    """Each of tfrun's options on a line of its own, with its one line of help."""
    lines = text.splitlines()
    for flag, option in RUN_OPTIONS.items():
        usage = f"{flag} {option.metavar}".split()
        documented = [line for line in lines if line.split()[: len(usage)] == usage]
        assert any(option.help in line for line in documented), (flag, text)


@pytest.mark.parametrize(
    ("argv", "usage", "terraform_help"),
    [
        (["plan", "--help"], "usage: tfrun plan [PATH]", "terraform plan -help"),
        (["plan", "-h"], "usage: tfrun plan [PATH]", "terraform plan -help"),
        (["plan", "-help"], "usage: tfrun plan [PATH]", "terraform plan -help"),
        (["run-all", "--help"], "usage: tfrun run-all COMMAND [PATH]", "terraform -help"),
        (["run-all", "apply", "-h", "--yes"], "usage: tfrun run-all apply", "terraform apply"),
        (["--yes", "plan", "--help"], "usage: tfrun plan [PATH]", "terraform plan -help"),
        (["destroy", PROD, "--envv", "--help"], "usage: tfrun destroy", "terraform destroy"),
        (["state", "rm", "x.y", "--help"], "usage: tfrun state [PATH]", "terraform state -help"),
    ],
)
def test_help_on_a_terraform_command_runs_nothing(
    repo: Repo,
    argv: list[str],
    usage: str,
    terraform_help: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(repo.live)
    before = repo.snapshot()

    assert main([*argv, "--terraform-bin", str(repo.terraform)]) == 0

    out, err = capsys.readouterr()
    assert out.startswith(usage) and err == ""
    assert f"terraform's own help for the command: {terraform_help}" in " ".join(out.split())
    _assert_lists_every_option(out)
    assert repo.recorded() == []
    assert repo.snapshot() == before


def test_help_after_double_dash_is_terraform_s(repo: Repo) -> None:
    stack = repo.live / STAGING
    args = ["validate", "--terraform-bin", str(repo.terraform), "--", "-help"]
    run_cli(args, stack).assert_success()
    assert [c["args"] for c in repo.recorded()][-1][-1] == "-help"


@pytest.mark.parametrize("flag", ["--help", "-h", "-help"])
def test_tfrun_help_lists_the_options_of_terraform_commands(tmp_path: Path, flag: str) -> None:
    out = run_cli([flag], tmp_path).assert_success().stdout
    _assert_lists_every_option(out)
    assert "tfrun COMMAND --help" in " ".join(out.split())


# ---------------------------------------------------------------------------------------------
# 4. An empty command.


@pytest.mark.parametrize(
    "argv", [[""], [" "], ["run-all", ""], ["--yes", ""], ["", "plan"], ["run-all", "--yes"]]
)
def test_an_empty_command_is_an_error(
    repo: Repo,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = _refused(repo, argv, "live", monkeypatch, capsys)
    assert message.startswith("tfrun: error: name a terraform command")


# ---------------------------------------------------------------------------------------------
# 5. Numbers.


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lock-timeout", "nan", "--lock-timeout takes a number of seconds, 0 or more, not 'nan'"),
        ("--lock-timeout", "NaN", "--lock-timeout takes a number of seconds"),
        ("--lock-timeout", "inf", "--lock-timeout takes a number of seconds, 0 or more, not 'inf'"),
        ("--lock-timeout", "Infinity", "--lock-timeout takes a number of seconds"),
        ("--lock-timeout", "-1", "--lock-timeout takes a number of seconds"),
        ("--lock-timeout", "soon", "--lock-timeout takes a number of seconds"),
        ("--parallelism", "0", "--parallelism takes a whole number of 1 or more, not '0'"),
        ("--parallelism", "1.5", "--parallelism takes a whole number of 1 or more"),
        ("--parallelism", "inf", "--parallelism takes a whole number of 1 or more"),
    ],
)
def test_numbers_must_be_finite_and_in_range(
    repo: Repo,
    option: str,
    value: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["run-all", "plan", option, value], ["run-all", "plan", f"{option}={value}"]):
        refused = _refused(repo, argv, "live", monkeypatch, capsys)
        assert refused.startswith(f"tfrun: error: {message}")


# ---------------------------------------------------------------------------------------------
# 6. --debug after the command.


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--debug"],
        ["check", "--format", "json", "--debug"],
        ["graph", "--debug", "--format", "text"],
        ["generate", "--debug"],
        ["affected", "--base", "HEAD", "--debug"],
        ["ci", "gitlab", "--debug"],
        ["ci", "--debug", "github"],
        ["sandbox", "status", "--debug"],
        ["--debug", "check"],
        ["plan", "--debug"],
        ["plan", "staging-eu-west-1/netwrok", "--debug"],
    ],
)
def test_debug_is_accepted_after_every_command(
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # not a live repository: each command fails, with a traceback
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "unrecognized arguments" not in err
    assert err.rstrip().splitlines()[-1].startswith("tfrun: error: ")


@pytest.mark.parametrize("argv", [["check"], ["plan", "--", "--debug"]])
def test_no_traceback_without_debug_before_double_dash(
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 4
    assert "Traceback" not in capsys.readouterr().err


# A folder with .tf files that discovery never calls a stack: named, it is no stack either
# (found in a trial: tfrun wrote a backend into a module's folder and planned it).
NOT_STACKS = [
    ("staging-eu-west-1/modules/x", "a folder named modules is never a stack"),
    ("staging-eu-west-1/a/b/c", "a stack is at most 2 levels below its environment folder"),
]


@pytest.mark.parametrize(("folder", "why"), NOT_STACKS)
@pytest.mark.parametrize("named", [True, False])
def test_a_folder_discovery_skips_is_no_stack_when_named(
    repo: Repo,
    folder: str,
    why: str,
    named: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_tree(repo.live, {f"{folder}/main.tf": 'variable "v" {\n  default = 1\n}\n'})
    where, argv = ("live", ["plan", folder]) if named else (f"live/{folder}", ["plan"])
    monkeypatch.chdir(repo.top / where)
    assert main([*argv, "--terraform-bin", str(repo.terraform)]) == 4
    message = " ".join(capsys.readouterr().err.split())
    assert f"{repo.live / folder}: not a stack: {why}" in message
    assert repo.recorded() == []
    assert sorted(p.name for p in (repo.live / folder).iterdir()) == ["main.tf"]  # no backend
