"""End to end, docworker against the emulator's own ceiling and against the Python baseline a team
would otherwise write, on the same objects, on the same machine, in one run.

N distinct ~100 KiB DICOM files (CT-like, explicit VR little endian, 256x200 16-bit pixels, unique
UIDs) are generated once in memory. Each phase gets its own fresh bucket and queue on the local
moto_server, wired S3 -> SQS as infra/local/wire.py does, starts its consumer, waits until the
consumer has deleted the queue's s3:TestEvent (start-up is over), then uploads the N objects under
medical/ at a steady rate (--rate objects/s: a few uploader threads on one fixed schedule). The rate
keeps the queue shallow: moto's SQS scans the whole queue on every call, so a deep queue measures
moto rather than the consumer.

- ceiling: 4 boto3 threads doing receive_message(10) + delete_message_batch and nothing else, in
  this process. An object is done when the delete of its message returned.
- docworker: target/release/docworker run (built here, as bench/peers.py builds its tool), default
  concurrency. An object is done at documents.processed_at (status 'finalized').
- python1, python16: bench/baseline.py with 1 or 16 threads (GET, SHA-256, pydicom header parse to
  DICOM JSON, psycopg upsert, delete). An object is done at baseline_documents.processed_at.

Per phase: objects/s = N / (last done - first upload returned); latency = done - put_object
returned, p50 and p99; the deepest the queue got (visible + in flight, sampled every 0.25 s); for
consumer processes, CPU time (utime + stime from /proc/<pid>/stat, from just before the first
upload to the moment the last row is seen) per object and peak RSS (VmHWM); and moto's CPU per
object over the same span, so the emulator's cost is visible but not mixed into the worker's.
Throughput cannot exceed the upload rate: a ratio near 1 means both consumers kept up, and the
latencies tell them apart. Rows go to a dedicated database, docworker_bench (created and migrated
here). Exits non-zero, naming the phase, if a phase does not finish all N objects in --timeout s.

Usage: python3 bench/e2e.py [--objects 500] [--rate 100] [--phases ceiling,docworker,python1,python16] [--worker PATH]
"""

import argparse
import importlib.util
import io
import json
import os
import random
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus, urlsplit

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
stack = os.path.join(root, "infra", "local", "stack.sh")

# Like scripts/test.sh: use this Python if it has the modules, else the virtualenv under .local/.
NEEDED = {"boto3": "boto3", "pydicom": "pydicom>=3,<4", "psycopg": "psycopg[binary]>=3"}
if any(importlib.util.find_spec(module) is None for module in NEEDED):
    venv = os.path.join(root, ".local", "venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        sys.exit(f"e2e: {', '.join(NEEDED)} still missing in {venv}")
    subprocess.run([stack, "venv"], check=True)
    python = os.path.join(venv, "bin", "python")
    if subprocess.run([python, "-c", f"import {', '.join(NEEDED)}"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "-q", *NEEDED.values()], check=True)
    os.execv(python, [python, *sys.argv])

import boto3  # noqa: E402
import psycopg  # noqa: E402
import pydicom  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

# One database per build compared (DOCWORKER_BENCH_DATABASE): an older build refuses a database
# that a newer one has migrated further.
BENCH_DATABASE = os.environ.get("DOCWORKER_BENCH_DATABASE", "docworker_bench")
RELEASE_WORKER = os.path.join(root, "target", "release", "docworker")
CEILING_THREADS = 4
UPLOAD_THREADS = 4


class Failure(Exception):
    pass


def make_objects(n):
    """N distinct CT-like Part 10 files of ~100 KiB (header plus 256x200 16-bit pixels)."""
    rng = random.Random(20261125)
    objects = []
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality = "CT"
        ds.PatientName = f"Bench^Patient{i:05d}"
        ds.PatientID = f"E2E{i:05d}"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = "20261125"
        ds.StudyTime = "120000"
        ds.AccessionNumber = f"A{i:07d}"
        ds.StudyDescription = "CT CHEST WITHOUT CONTRAST"
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.SliceThickness = "1.0"
        ds.PixelSpacing = ["0.7", "0.7"]
        ds.ImagePositionPatient = ["-90", "-70", str(-i)]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = 200, 256
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.randbytes(200 * 256 * 2)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        objects.append(buffer.getvalue())
    return objects


def key_of(i):
    return f"medical/e2e/{i:05d}.dcm"


def cpu_seconds(pid):
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


def moto_process():
    """The moto_server serving AWS_ENDPOINT_URL, if it runs on this machine: (pid, its Python)."""
    port = str(urlsplit(os.environ["AWS_ENDPOINT_URL"]).port).encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(arg.endswith(b"moto_server") for arg in argv) and port in argv:
            return int(pid), argv[0].decode()
    return None, None


def queue_depth(sqs, queue_url):
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def event_keys(body):
    """The object keys in an S3 event notification body (none in an s3:TestEvent)."""
    return [unquote_plus(record["s3"]["object"]["key"]) for record in json.loads(body).get("Records", [])]


class Ceiling:
    """Raw receive + delete, no processing: the most moto delivers to a consumer."""

    pid = None

    def __init__(self, queue_url):
        self.done = {}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.consume, args=(queue_url,)) for _ in range(CEILING_THREADS)]
        for thread in self.threads:
            thread.start()

    def consume(self, queue_url):
        sqs = boto3.session.Session().client("sqs")
        while not self.stopping.is_set():
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not messages:
                continue
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            deleted = {entry["Id"] for entry in sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Successful", [])}
            at = time.time()
            for i, message in enumerate(messages):
                if str(i) in deleted:
                    for key in event_keys(message["Body"]):
                        self.done.setdefault(key, at)

    def check(self):
        if not all(thread.is_alive() for thread in self.threads):
            raise Failure("a ceiling consumer thread died (traceback above)")

    def count(self):
        self.check()
        return len(self.done)

    def completions(self):
        return dict(self.done)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join()


class Process:
    """A consumer process (docworker or the baseline) whose rows say when each object was done."""

    def __init__(self, name, argv, env, log_path, database_url, bucket, table, finalized):
        self.name, self.log_path, self.bucket, self.table, self.finalized = name, log_path, bucket, table, finalized
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self.db = psycopg.connect(database_url, autocommit=True)

    def check(self):
        if self.process.poll() is not None:
            raise Failure(f"{self.name} exited with status {self.process.returncode}; its log: {self.log_path}")

    def count(self):
        self.check()
        if self.table == "documents":
            rejected = self.db.execute(
                "SELECT file_key, rejection_reason FROM documents WHERE bucket = %s AND status = 'rejected' LIMIT 1", (self.bucket,)
            ).fetchone()
            if rejected:
                raise Failure(f"docworker rejected {rejected[0]}: {rejected[1]}")
        return self.db.execute(f"SELECT count(*) FROM {self.table} WHERE bucket = %s AND {self.finalized}", (self.bucket,)).fetchone()[0]

    def completions(self):
        rows = self.db.execute(
            f"SELECT file_key, extract(epoch FROM processed_at)::float8 FROM {self.table} WHERE bucket = %s AND {self.finalized}",
            (self.bucket,),
        )
        return dict(rows.fetchall())

    def stop(self):
        self.db.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                print(f"e2e: {self.name} ignored SIGTERM for 60 s and was killed; its log: {self.log_path}", file=sys.stderr)


class DepthMonitor(threading.Thread):
    """The deepest the queue gets (visible + in flight) while the phase runs."""

    def __init__(self, queue_url):
        super().__init__(daemon=True)
        self.queue_url, self.deepest, self.stopping = queue_url, 0, threading.Event()
        self.sqs = boto3.session.Session().client("sqs")
        self.start()

    def run(self):
        while not self.stopping.wait(0.25):
            self.deepest = max(self.deepest, queue_depth(self.sqs, self.queue_url))

    def stop(self):
        self.stopping.set()
        self.join()
        return self.deepest


def wire(name):
    """A fresh bucket whose ObjectCreated events under medical/ go to a fresh queue, which has a
    dead-letter queue as in infra/local/wire.py."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    bucket = f"e2e-{name}-{secrets.token_hex(4)}"
    dlq_url = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    queue_url = sqs.create_queue(QueueName=bucket, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "medical/"}]}},
                }
            ]
        },
    )
    return bucket, queue_url


def unwire(bucket, queue_url, n):
    """Frees moto's memory: the phase's queues, objects and bucket."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    sqs.delete_queue(QueueUrl=queue_url)
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{bucket}-dlq")["QueueUrl"])
    for start in range(0, n, 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key_of(i)} for i in range(start, min(n, start + 1000))], "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def upload(bucket, objects, rate):
    """Puts every object on a fixed schedule (object i at start + i / rate); returns, per object,
    the wall-clock time its put_object returned."""
    s3 = boto3.client("s3")
    start = time.monotonic()

    def put(i):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s3.put_object(
            Bucket=bucket,
            Key=key_of(i),
            Body=objects[i],
            ContentType="application/dicom",
            Metadata={"original-filename": f"{i:05d}.dcm", "uploaded-by": "e2e-bench", "case-id": "case-e2e"},
        )
        return time.time()

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return list(pool.map(put, range(len(objects))))


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def run_phase(name, objects, args, database_url, log_dir, moto_pid):
    n = len(objects)
    bucket, queue_url = wire(name)
    sqs = boto3.client("sqs")
    if name == "ceiling":
        consumer = Ceiling(queue_url)
    else:
        log_path = os.path.join(log_dir, f"{name}.log")
        env = dict(os.environ, DATABASE_URL=database_url)
        if name == "docworker":
            argv = [args.worker, "run", "--no-migrate"]
            env.update(DOCWORKER_QUEUE_URL=queue_url, DOCWORKER_METRICS_ADDR="127.0.0.1:0", DOCWORKER_LOG_FORMAT="json")
            table, finalized = "documents", "status = 'finalized'"
        else:
            threads = name.removeprefix("python")
            argv = [sys.executable, os.path.join(root, "bench", "baseline.py"), "--threads", threads, "--queue-url", queue_url, "--database-url", database_url]
            table, finalized = "baseline_documents", "true"
        consumer = Process(name, argv, env, log_path, database_url, bucket, table, finalized)
    monitor = None
    try:
        deadline = time.monotonic() + 60
        while queue_depth(sqs, queue_url):
            consumer.check()
            if time.monotonic() > deadline:
                raise Failure(f"phase {name}: the consumer did not take the s3:TestEvent within 60 s")
            time.sleep(0.1)
        cpu_before = consumer.pid and cpu_seconds(consumer.pid)
        moto_before = moto_pid and cpu_seconds(moto_pid)
        monitor = DepthMonitor(queue_url)
        uploaded = upload(bucket, objects, args.rate)
        deadline = time.monotonic() + args.timeout
        while (count := consumer.count()) < n:
            if time.monotonic() > deadline:
                raise Failure(f"phase {name}: only {count} of {n} objects done {args.timeout} s after the last upload")
            time.sleep(0.05)
        cpu = consumer.pid and cpu_seconds(consumer.pid) - cpu_before
        moto_cpu = moto_pid and cpu_seconds(moto_pid) - moto_before
        rss = consumer.pid and peak_rss_mib(consumer.pid)
        done = consumer.completions()
    finally:
        deepest = monitor.stop() if monitor else None
        consumer.stop()
        unwire(bucket, queue_url, n)
    latencies = [(done[key_of(i)] - at) * 1000 for i, at in enumerate(uploaded)]
    return {
        "phase": name,
        "upload_rate": (n - 1) / (max(uploaded) - min(uploaded)),
        "throughput": n / (max(done.values()) - min(uploaded)),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "deepest": deepest,
        "cpu_ms": cpu and cpu * 1000 / n,
        "rss": rss,
        "moto_cpu_ms": moto_cpu and moto_cpu * 1000 / n,
    }


def large_object_env(database_url, queue_url, size, rust_log, **extra):
    """A worker's environment for one large object (bench/stream.py, bench/ranged.py): JSON logs
    with the debug lines that time the body, metrics on a free port, no scanner unless asked."""
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        DOCWORKER_QUEUE_URL=queue_url,
        DOCWORKER_METRICS_ADDR="127.0.0.1:0",
        DOCWORKER_LOG_FORMAT="json",
        DOCWORKER_MAX_OBJECT_BYTES=str(max(size, 1 << 30)),
        RUST_LOG=rust_log,
        **{"DOCWORKER_CLAMD_ADDR": "", **extra},
    )


def upload_large(bucket, key, body, part_mib=0, checksum="CRC32"):
    """Uploads one large object straight to moto (bench/stream.py, bench/ranged.py): one
    PutObject, or a multipart upload in `part_mib` MiB parts. `checksum` "CRC32" sends what
    current SDKs and the AWS CLI send by default (a full-object CRC32 for a PutObject, per-part
    CRC32s and so a composite one for multipart); `None` sends no checksum, as a browser uploader
    such as Uppy does (`request_checksum_calculation=when_required`), so that S3 holds only the
    ETag."""
    from botocore.config import Config

    s3 = boto3.client("s3", config=Config(request_checksum_calculation="when_supported" if checksum else "when_required"))
    algorithm = {"ChecksumAlgorithm": checksum} if checksum else {}
    if not part_mib:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/dicom", **algorithm)
        return
    part = part_mib << 20
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/dicom", **algorithm)["UploadId"]
    parts = []
    view = memoryview(body)
    for number, offset in enumerate(range(0, len(body), part), start=1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(view[offset:offset + part]), **algorithm)
        parts.append({"PartNumber": number, "ETag": answer["ETag"], **({f"Checksum{checksum}": answer[f"Checksum{checksum}"]} if checksum else {})})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def setup(worker=None):
    """The stack's services and environment, the worker (the release build unless another binary
    is given, e.g. an earlier build for a before/after comparison), and the bench database."""
    subprocess.run([stack, "services"], check=True)
    for line in subprocess.run([stack, "env"], capture_output=True, text=True, check=True).stdout.splitlines():
        name, _, value = shlex.split(line)[1].partition("=")
        if name != "DOCWORKER_QUEUE_URL":
            os.environ[name] = value
    if worker is None:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "docworker"], cwd=root, check=True)
    with psycopg.connect(os.environ["DOCWORKER_ADMIN_DATABASE_URL"], autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DATABASE,)).fetchone():
            admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{BENCH_DATABASE}").geturl()
    worker = worker or RELEASE_WORKER
    migrated = subprocess.run([worker, "migrate"], env=dict(os.environ, DATABASE_URL=database_url), capture_output=True, text=True)
    if migrated.returncode:
        sys.exit(f"e2e: docworker migrate failed:\n{migrated.stdout}{migrated.stderr}")
    return database_url


def machine(moto_python):
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    moto = "unknown (moto_server not found on this machine)"
    if moto_python:
        answer = subprocess.run([moto_python, "-c", "import importlib.metadata as m; print(m.version('moto'))"], capture_output=True, text=True)
        moto = answer.stdout.strip() or "unknown"
    return f"{os.cpu_count()} CPUs, {model}; moto {moto}; pydicom {pydicom.__version__}, boto3 {boto3.__version__}, Python {sys.version.split()[0]}"


def fmt(value, digits=1):
    return "—" if value is None else f"{value:.{digits}f}"


def report(results, n, kib, rate, machine_line, load_before):
    print()
    print(f"{n} DICOM objects of {kib:.0f} KiB on average per phase, uploaded at {rate:g}/s; {machine_line}")
    print(f"load average before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f} (other work on the machine shares its CPUs)")
    print()
    print("| phase | upload/s | objects/s | p50 ms | p99 ms | deepest queue | consumer CPU ms/object | consumer peak RSS MiB | moto CPU ms/object |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        print(
            f"| {r['phase']} | {r['upload_rate']:.1f} | {r['throughput']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {fmt(r['deepest'], 0)} "
            f"| {fmt(r['cpu_ms'], 2)} | {fmt(r['rss'])} | {fmt(r['moto_cpu_ms'], 2)} |"
        )
    worker = results.get("docworker")
    if not worker:
        return
    print()
    print("Throughput is capped by the upload rate: a ratio near 1 means both kept up, and p50/p99 tell them apart.")
    for other, target in (("ceiling", 0.90), ("python16", 1.0), ("python1", None)):
        if other in results:
            ratio = worker["throughput"] / results[other]["throughput"]
            goal = f" (target ≥ {target:.2f}: {'met' if ratio >= target else 'MISSED'})" if target else ""
            print(f"- docworker / {other} objects/s: {ratio:.3f}×{goal}")
    for other in ("python16", "python1"):
        if other in results and worker["cpu_ms"]:
            ratio = results[other]["cpu_ms"] / worker["cpu_ms"]
            print(f"- {other} CPU per object / docworker's: {ratio:.1f}× (target ≥ 4: {'met' if ratio >= 4 else 'MISSED'})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100, help="uploads per second (default 100)")
    parser.add_argument("--phases", default="ceiling,docworker,python1,python16")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a phase may take after its last upload")
    parser.add_argument("--worker", help="a docworker binary to measure instead of building target/release/docworker")
    args = parser.parse_args()
    phases = args.phases.split(",")
    unknown = set(phases) - {"ceiling", "docworker", "python1", "python16"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    database_url = setup(args.worker)
    args.worker = args.worker or RELEASE_WORKER
    moto_pid, moto_python = moto_process()
    objects = make_objects(args.objects)
    kib = sum(map(len, objects)) / len(objects) / 1024
    log_dir = tempfile.mkdtemp(prefix="docworker-e2e-")
    print(f"e2e: {args.objects} objects of {kib:.1f} KiB on average; consumer logs in {log_dir}", file=sys.stderr)
    load_before = os.getloadavg()
    results, failures = {}, []
    for name in phases:
        print(f"e2e: phase {name}", file=sys.stderr)
        try:
            results[name] = run_phase(name, objects, args, database_url, log_dir, moto_pid)
        except Failure as e:
            failures.append(str(e))
            print(f"e2e: FAILED: {e}", file=sys.stderr)
    report(results, args.objects, kib, args.rate, machine(moto_python), load_before)
    if failures:
        print()
        for failure in failures:
            print(f"FAILED: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
