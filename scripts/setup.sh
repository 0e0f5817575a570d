#!/usr/bin/env bash
# Creates .venv and installs tfrun with its test and sandbox extras (the dev extra also brings
# the build tools tests/test_wheel.py builds the wheel with, offline). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v terraform >/dev/null; then
  echo "setup: terraform is not on PATH; tfrun drives the real binary (1.6 or newer)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
