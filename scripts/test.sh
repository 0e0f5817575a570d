#!/usr/bin/env bash
# Sets up, then runs the linters and the whole test suite (real terraform, moto on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-test-tools.sh
. .venv/bin/activate
ruff check tfrun tests bench
ruff format --check tfrun tests bench
mypy
python -m pytest "$@"
