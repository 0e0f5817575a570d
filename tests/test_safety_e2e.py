"""The safety rules end to end, with real terraform against moto, on the examples (prod is
protected): every refused destroy form leaves the state object and the VPC as they were, and
the same destroy goes through from a manual GitLab job.

CI runs this suite with CI=true: each command here gets the CI variables it means, and the
laptop commands get none.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CI_VARIABLES, ISOLATED_PREFIXES, StateBackend, run_cli

NETWORK = "prod-eu-west-1/network"
KEY = "prod/eu-west-1/network.tfstate"

# Each destructive form, and the folder (relative to the live root) it runs in.
REFUSED_FORMS = [
    (["destroy", "--yes"], NETWORK),
    (["apply", "-destroy", "--yes"], NETWORK),
    (["run-all", "destroy", "--yes"], "prod-eu-west-1"),
    (["destroy", ".", "--yes"], "."),  # every stack, one of them protected
    (["state", "rm", "module.vpc.aws_vpc.this", "--yes"], NETWORK),
    (["workspace", "delete", "blue", "--yes"], NETWORK),
    (["force-unlock", "-force", "0b6e1e3c", "--yes"], NETWORK),
    (["apply", "--yes", "--", "-destroy"], NETWORK),
    (["apply", "destroy.tfplan", "--yes"], NETWORK),
]


# Everything a CI sets that tfrun's CI detection could read (helpers.ISOLATED_PREFIXES, less the
# AWS, terraform and tfrun settings these commands need).
_CI_PREFIXES = tuple(p for p in ISOLATED_PREFIXES if p not in ("AWS_", "TF_", "TFRUN_", "GIT_"))


def _without_ci(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in env.items() if k not in CI_VARIABLES and not k.startswith(_CI_PREFIXES)
    }


@pytest.mark.slow
def test_refused_destroys_leave_prod_intact_and_a_manual_gitlab_job_destroys_it(
    examples_copy: Path, state_backend: StateBackend, tf_env: dict[str, str]
) -> None:
    live = examples_copy
    network = live / NETWORK
    laptop = _without_ci(tf_env)
    assert not {"CI", "GITLAB_CI", "GITHUB_ACTIONS"} & set(laptop)
    ec2 = state_backend.sandbox.client("ec2", "eu-west-1")

    # An apply on prod from CI (on a laptop without a terminal it would be refused).
    run_cli(["apply", "--yes", "-no-color"], network, {**laptop, "CI": "true"}).assert_success()
    state = state_backend.read_json(KEY)
    vpc_id = state["outputs"]["vpc_id"]["value"]
    assert state["resources"]
    # Planning a destroy is read-only, so a laptop may; applying that plan is what is refused.
    run_cli(
        ["plan", "-destroy", "-out=destroy.tfplan", "-no-color"], network, laptop
    ).assert_success()
    versions = state_backend.versions(KEY)
    assert versions

    for args, where in REFUSED_FORMS:
        result = run_cli(args, live / where, laptop)
        result.assert_exit(3)
        assert "Refused:" in result.stderr and NETWORK in result.stderr, result
        assert "protected-destroy-in-ci-only" in result.stderr, result
        # Intact after every one: not a new state version, and the VPC is there.
        assert state_backend.versions(KEY) == versions, result
        assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"], result
    assert state_backend.read_json(KEY)["serial"] == state["serial"]
    assert all("Info" not in item for item in state_backend.lock_items())  # no lock held

    # The same destroy from a manual GitLab job goes through.
    manual = {**laptop, "CI": "true", "GITLAB_CI": "true", "CI_JOB_MANUAL": "true"}
    run_cli(["destroy", "--yes", "-no-color"], network, manual).assert_success()

    assert state_backend.read_json(KEY)["resources"] == []
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
