#!/usr/bin/env bash
# Sets everything up, then runs tfrun on a copy of examples/ against a local AWS sandbox
# (moto on 127.0.0.1): graph, apply every stack in order (prod as a CI job would, after two
# refusals on the laptop), a second plan that finds nothing to change, a remote-state read,
# and the sandbox stopped at the end whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

work="$PWD/.demo"
rm -rf "$work"
mkdir -p "$work"
cp -r examples/live examples/modules "$work/"

# No registry here: the aws provider comes from a local filesystem mirror, shared by all stacks.
mirror="${TFRUN_PROVIDER_MIRROR:-/opt/tf-plugins}"
if ! ls "$mirror"/registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws* >/dev/null 2>&1; then
  echo "demo: no aws provider under $mirror; set TFRUN_PROVIDER_MIRROR to a filesystem mirror." >&2
  exit 1
fi
cat > "$work/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc"
export TF_PLUGIN_CACHE_DIR="$work/plugin-cache"
mkdir -p "$TF_PLUGIN_CACHE_DIR"

cd "$work/live"
trap 'tfrun sandbox down' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "tfrun sandbox up"
tfrun sandbox up

step "tfrun graph (order from the hand-written terraform_remote_state reads)"
tfrun graph

step "tfrun run-all apply --yes --env staging --env shared-services"
tfrun run-all apply --yes --env staging --env shared-services

step "prod is protected: a destroy from a laptop is refused (exit 3), whatever its form"
set +e
tfrun destroy prod-eu-west-1/network --yes
echo "exit code: $?"
tfrun run-all apply --yes --env prod
echo "exit code: $? (an apply to prod needs CI, or a person typing 'prod' on a terminal)"
set -e

step "CI=true tfrun run-all apply --yes --env prod (as a CI job would)"
CI=true tfrun run-all apply --yes --env prod

step "tfrun run-all plan --detailed-exitcode (nothing to change: exit 0)"
tfrun run-all plan --detailed-exitcode

step "tfrun output (prod platform reads prod network's outputs through remote state)"
(cd prod-eu-west-1/platform && tfrun output)

step "the generated provider.tf of prod-eu-west-1/network"
cat prod-eu-west-1/network/provider.tf
