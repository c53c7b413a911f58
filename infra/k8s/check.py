"""Offline check of infra/k8s/docworker.yaml: parses every document as YAML and checks the parts
that matter to docworker (probes, grace period, KEDA trigger, PDB). No cluster needed."""

import pathlib
import sys

import yaml

docs = list(yaml.safe_load_all((pathlib.Path(__file__).parent / "docworker.yaml").read_text()))
by_kind = {d["kind"]: d for d in docs}
problems = []

def need(condition, message):
    if not condition:
        problems.append(message)

for kind in ["ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication"]:
    need(kind in by_kind, f"missing {kind}")
    need(by_kind.get(kind, {}).get("metadata", {}).get("name"), f"{kind} has no name")

pod = by_kind["Deployment"]["spec"]["template"]["spec"]
container = pod["containers"][0]
need(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe must hit /healthz")
need(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe must hit /readyz")
deadline = int(by_kind["ConfigMap"]["data"]["DOCWORKER_SHUTDOWN_DEADLINE_SECS"])
need(pod["terminationGracePeriodSeconds"] > deadline, "grace period must exceed the shutdown deadline")
need(pod["securityContext"]["runAsNonRoot"] is True, "must run as non-root")
need(container["args"] == ["run"], "container runs `docworker run`")
trigger = by_kind["ScaledObject"]["spec"]["triggers"][0]
need(trigger["type"] == "aws-sqs-queue", "KEDA trigger must be aws-sqs-queue")
need(trigger["metadata"]["queueURL"] == by_kind["ConfigMap"]["data"]["DOCWORKER_QUEUE_URL"], "KEDA and the worker must watch the same queue")
need(by_kind["ScaledObject"]["spec"]["scaleTargetRef"]["name"] == by_kind["Deployment"]["metadata"]["name"], "KEDA scales the Deployment")
pdb = by_kind["PodDisruptionBudget"]["spec"]
need(pdb["selector"]["matchLabels"] == by_kind["Deployment"]["spec"]["selector"]["matchLabels"], "PDB selects the worker pods")

if problems:
    print("infra/k8s/docworker.yaml:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"infra/k8s/docworker.yaml: {len(docs)} documents OK")
