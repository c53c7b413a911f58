#!/usr/bin/env bash
# Brings the local stack up, uploads sample documents made by the project, runs docworker on
# them and prints the resulting Document rows. See README.md, "Try it".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

command -v cargo >/dev/null || { echo "demo: cargo is required (https://rustup.rs)" >&2; exit 1; }
infra/local/stack.sh up >/dev/null
eval "$(infra/local/stack.sh env)"
export DOCWORKER_QUEUE_URL

# One build for the worker and the sample generator (same features, no dev-dependencies). Cargo's
# own progress shows while it runs: the first build compiles the AWS SDK and takes minutes.
echo "demo: building docworker and its sample generator (the first build takes several minutes)" >&2
cargo build -p docworker -p docworker-shared --features docworker-shared/fixtures --bins
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target/debug/docworker-samples" .local/samples

run=$(date +%Y%m%d-%H%M%S)
python=python3; python3 -c 'import boto3' 2>/dev/null || python=.local/venv/bin/python
mapfile -t keys < <("$python" infra/local/upload.py .local/samples "$run")
echo "demo: uploaded ${#keys[@]} objects under */$run/" >&2

"$target/debug/docworker" migrate --log-format text 2>/dev/null
"$target/debug/docworker" run --log-format text 2>.local/demo-worker.log &
worker=$!
trap 'kill -TERM $worker 2>/dev/null || true' EXIT

query="SELECT file_key, status, content_type, coalesce(modality, '') AS modality,
              coalesce(transfer_syntax_uid, '') AS transfer_syntax, coalesce(scan, '') AS scan,
              coalesce(rejection_reason, '') AS rejection_reason
       FROM documents WHERE file_key LIKE '%/$run/%' ORDER BY status, file_key"
for _ in $(seq 1 120); do
  done_count=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM documents WHERE file_key LIKE '%/$run/%' AND status <> 'pending'")
  [ "$done_count" -ge "${#keys[@]}" ] && break
  sleep 1
done
psql "$DATABASE_URL" -P pager=off -c "$query"
# The gate: each object's status tag in S3 (which the bucket policy reads), shown for the EICAR
# upload and a finalized one; the worker tags right after each commit, so allow it a moment.
"$python" - "$run" <<'PY'
import json, pathlib, sys, time
import boto3
run = sys.argv[1]
bucket = json.loads(pathlib.Path("infra/local/wiring.json").read_text())["bucket"]
s3 = boto3.client("s3")
for key in (f"reports/{run}/invoice-eicar.pdf", f"reports/{run}/discharge-letter.pdf"):
    for _ in range(50):
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
        if "docworker-status" in tags:
            break
        time.sleep(0.1)
    print(f"tags of {key}: " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items())))
PY
echo "demo: worker log in .local/demo-worker.log" >&2
