#!/usr/bin/env bash
# What the tests need beyond tfrun itself (the demo does not): gitlab-ci-local and rsync.
set -euo pipefail

# tests/test_ci_gitlab_local.py runs the generated GitLab pipeline with gitlab-ci-local, whose
# shell isolation copies each job's files with rsync. Both are installed once, quietly.
GITLAB_CI_LOCAL_VERSION=4.60.1
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "$@" >/dev/null 2>&1 || {
    as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq "$@" >/dev/null
  }
}
command -v rsync >/dev/null || apt_install rsync
command -v npm >/dev/null || apt_install nodejs npm
if [ "$(gitlab-ci-local --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
  # re2, a dependency, compiles a native module at install time.
  command -v g++ >/dev/null && command -v make >/dev/null || apt_install g++ make
  npm install --global --loglevel=error --no-audit --no-fund --allow-scripts=re2 \
    "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" >/dev/null
fi
