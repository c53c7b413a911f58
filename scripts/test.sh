#!/usr/bin/env bash
# The whole test suite, as CI runs it: brings up PostgreSQL and moto_server if they are not
# running, checks formatting and lints, builds the worker, and runs unit and integration tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v cargo >/dev/null || { echo "test: cargo is required (https://rustup.rs)" >&2; exit 1; }
infra/local/stack.sh services
eval "$(infra/local/stack.sh env)"

# Offline infrastructure checks: cfn-lint on the CloudFormation template, a YAML check of the
# Kubernetes manifests. Installed into .local/venv when not on PATH.
if ! command -v cfn-lint >/dev/null; then
  infra/local/stack.sh venv
  .local/venv/bin/pip install -q cfn-lint
  export PATH="$root/.local/venv/bin:$PATH"
fi
cfn-lint infra/aws/docworker.json
python3 infra/k8s/check.py

# Prometheus alerting rules: syntax, and the unit tests with series shaped like the worker's.
# promtool comes from Debian's prometheus package; the integration tests also run
# `promtool check metrics` on a live worker's /metrics (required when CI=true).
if ! command -v promtool >/dev/null; then
  echo "test: installing Debian's prometheus package for promtool" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules infra/monitoring/alerts.yaml
promtool test rules infra/monitoring/alerts.test.yaml

# DICOM headers against an independent reader: pydicom, on the real files in its test data.
py=python3
if ! python3 -c 'import pydicom' 2>/dev/null; then
  infra/local/stack.sh venv
  .local/venv/bin/pip install -q 'pydicom>=3,<4'
  py=.local/venv/bin/python
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The integration tests drive the real binary: build it first, with the features the tests build
# the workspace with (the samples' fixtures), so that `cargo test` compiles nothing twice.
cargo build -p docworker -p docworker-shared --features docworker-shared/fixtures --bins --examples
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$py" -W ignore tests/pydicom/compare.py "$target/debug/examples/header"
log=$(mktemp)
set +e
cargo test --workspace --all-features 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo prints one result line per test binary, the last often a doc-test run with no tests:
# close with the whole suite's count.
awk '/^test result:/ {passed += $4; failed += $6} END {printf "tests: %d passed, %d failed\n", passed, failed}' "$log"
rm -f "$log"
exit "$status"
