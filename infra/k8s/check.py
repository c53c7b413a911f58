"""Offline check of infra/k8s/docworker.yaml: parses every document as YAML and checks the parts
that matter to docworker (probes, grace period, KEDA trigger, PDB). No cluster needed."""

import pathlib
import sys

import yaml

docs = list(yaml.safe_load_all((pathlib.Path(__file__).parent / "docworker.yaml").read_text()))
named = {(d["kind"], d["metadata"]["name"]): d for d in docs}
# One document per kind, but two ConfigMaps: the worker's settings and clamd's configuration.
by_kind = {d["kind"]: d for d in docs if d["kind"] != "ConfigMap"}
by_kind["ConfigMap"] = named.get(("ConfigMap", "docworker"), {})
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
# The gate's scanner: a native sidecar the worker waits for, reached over the pod's loopback, with
# a stream limit no smaller than what the worker sends it.
config = by_kind["ConfigMap"]["data"]
sidecars = {c["name"]: c for c in pod.get("initContainers", [])}
clamav = sidecars.get("clamav", {})
need(clamav.get("restartPolicy") == "Always", "clamav must be a native sidecar (restartPolicy: Always)")
need("startupProbe" in clamav and "readinessProbe" in clamav, "clamav needs startup and readiness probes (the worker waits for its signatures)")
need(config.get("DOCWORKER_CLAMD_ADDR") == "127.0.0.1:3310", "the worker scans through the sidecar on 127.0.0.1:3310")
memory = clamav.get("resources", {}).get("requests", {}).get("memory", "0Mi")
need(memory.endswith("Mi") and int(memory[:-2]) >= 1024, "clamav needs at least 1 GiB for the full signature set")
clamd_conf = named.get(("ConfigMap", "docworker-clamd"), {}).get("data", {}).get("clamd.conf", "")
settings = dict(line.split(None, 1) for line in clamd_conf.splitlines() if line.strip())
def mib(setting):
    value = settings.get(setting, "0M")
    return int(value[:-1]) if value.endswith("M") else 0

def gib(quantity):
    return int(quantity[:-2]) if quantity.endswith("Gi") else 0

scan_max = int(config.get("DOCWORKER_SCAN_MAX_BYTES", "0"))
need(mib("StreamMaxLength") << 20 >= scan_max, "StreamMaxLength must be at least DOCWORKER_SCAN_MAX_BYTES")
need(scan_max >= 1 << 30, "DOCWORKER_SCAN_MAX_BYTES must cover the worker's 1 GiB maximum object")
need(mib("MaxFileSize") >= mib("StreamMaxLength"), "MaxFileSize must be at least StreamMaxLength (a whole stream is one file)")
need(mib("MaxScanSize") >= mib("MaxFileSize"), "MaxScanSize must be at least MaxFileSize")
# The worker waits DOCWORKER_SCAN_TIMEOUT_SECS (60 by default) + 1 s per 5 MiB for the answer.
answer_secs = int(config.get("DOCWORKER_SCAN_TIMEOUT_SECS", "60")) + scan_max / (5 << 20)
need(int(settings.get("MaxScanTime", "120000")) >= answer_secs * 1000, "MaxScanTime must exceed the worker's wait for the answer to its largest object")
# clamd spools each INSTREAM to its TemporaryDirectory: one StreamMaxLength per object in flight.
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m["mountPath"] for m in clamav.get("volumeMounts", [])}
need(mounts.get("clamav-tmp") == settings.get("TemporaryDirectory", "/tmp"), "clamd's TemporaryDirectory must be the clamav-tmp volume")
spool = int(config["DOCWORKER_CONCURRENCY"]) * mib("StreamMaxLength")
need(gib(volumes["clamav-tmp"]["emptyDir"].get("sizeLimit", "0Gi")) << 10 >= spool, "clamav-tmp must hold DOCWORKER_CONCURRENCY x StreamMaxLength")
need(gib(clamav.get("resources", {}).get("requests", {}).get("ephemeral-storage", "0Gi")) >= gib(volumes["clamav-tmp"]["emptyDir"]["sizeLimit"]), "clamav must request the ephemeral storage its spool may use")
need(settings.get("TCPAddr") == "127.0.0.1", "clamd listens on the pod's loopback only")
pdb = by_kind["PodDisruptionBudget"]["spec"]
need(pdb["selector"]["matchLabels"] == by_kind["Deployment"]["spec"]["selector"]["matchLabels"], "PDB selects the worker pods")

if problems:
    print("infra/k8s/docworker.yaml:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"infra/k8s/docworker.yaml: {len(docs)} documents OK")
