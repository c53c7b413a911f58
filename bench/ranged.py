"""Large objects at S3's per-connection speed (issue 17): the release worker reading a 256 MiB and a
1 GiB DICOM object through bench/pace (docworker-pace), a proxy that caps each TCP connection's
downstream rate (default 100 MB/s, AWS plans on 85-90 MB/s per GET connection) and holds each
response's first byte until 150 ms after its request, between the worker's S3 client and moto.
SQS and PostgreSQL are not proxied (AWS_ENDPOINT_URL_S3 points only S3 at the proxy).

In one run, interleaved per repetition:
- openssl speed -evp sha256 (single core, 64 KiB blocks), the ceiling a task reaches on AWS;
- the proxy check and the source's own ceiling: for each connection count N, N concurrent curl
  range GETs of the object (size/N bytes each) through a fresh proxy; each connection's rate as the
  proxy measured it (first to last downstream byte) and the aggregate (object size over the wall
  time of all N), which is what the local source (moto, one Python process) can serve over N paced
  connections; N=1 is the single-connection figure;
- for each worker variant (a label and the environment it adds, e.g. the ranged-read settings;
  `--variant single=DOCWORKER_X=...`), a fresh worker and a fresh proxy; the object is uploaded
  straight to moto (single PUT, or multipart with --multipart-mib) and timed from put_object's
  return to the committed row (documents.processed_at), and by the worker's own `duration_ms` split
  into the wait for the first byte and the body's streaming; the worker's CPU time per GiB and peak
  RSS (VmHWM, so one worker per variant and size); moto's and the proxy's CPU over the same span in
  cores busy; the proxy's connections (count, and their downstream rates).
- with --direct, the same without the proxy for 256 MiB: the worker's event to row against a plain
  streamed GET (curl) of the same object from moto, in alternation.

Usage: python3 bench/ranged.py [--sizes-mib 256,1024] [--repeat 2] [--connections 1,8]
    [--variant LABEL=ENV=VALUE,ENV=VALUE ...] [--worker PATH] [--pace PATH] [--multipart-mib 0]
    [--direct 3]
"""

import argparse
import calendar
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import e2e  # installs what is missing and re-executes in the venv; also root and the binary path
from e2e import Process, cpu_seconds, large_object_env, moto_process, peak_rss_mib, queue_depth, setup, upload_large, wire
from stream import large_dicom, openssl_speed, settled_times
from urllib.parse import urlsplit

import boto3

RELEASE_PACE = os.path.join(e2e.root, "target", "release", "docworker-pace")
MOTO_PATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_ranges")


def private_moto(port):
    """A moto_server of its own on `port`, the stack's Python and moto, with bench/moto_ranges on
    PYTHONPATH (each object's value read once, so a ranged GET costs moto the range, as on S3)."""
    pid, _ = moto_process()
    if pid is None:
        sys.exit("ranged: no stack moto_server found to copy the command line of")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [arg.decode() for arg in f.read().split(b"\0") if arg]
    argv = argv[: next(i for i, arg in enumerate(argv) if arg.endswith("moto_server")) + 1] + ["-H", "127.0.0.1", "-p", str(port)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [MOTO_PATCH, os.environ.get("PYTHONPATH")])))
    log = open(os.path.join(tempfile.mkdtemp(prefix="docworker-ranged-moto-"), "moto.log"), "wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/moto-api/")
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"ranged: the private moto_server did not answer on port {port}; log: {log.name}")


class Pace:
    """A docworker-pace on a free port; `stop()` returns its per-connection JSON lines."""

    def __init__(self, binary, rate_mb_s, first_byte_ms, upstream):
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--upstream", upstream,
             "--rate-mb-s", str(rate_mb_s), "--first-byte-ms", str(first_byte_ms)],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            sys.exit(f"ranged: docworker-pace did not start ({line!r})")
        self.address = line.split()[-1]
        self.url = f"http://{self.address}"
        self.pid = self.process.pid

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        # Each closed connection is printed when it closes and again in the final list: keep the last.
        connections = {}
        for line in out.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                connections[record["conn"]] = record
        return list(connections.values())


def presigned(endpoint, bucket, key):
    """A presigned GET through `endpoint` (moto checks no signatures; the host must still match)."""
    client = boto3.client("s3", endpoint_url=endpoint)
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)


def parallel_curl(url, size, n):
    """N concurrent curl range GETs covering the object: (wall seconds, [each one's first byte, s])."""
    step = -(-size // n)
    start = time.monotonic()
    curls = [
        subprocess.Popen(
            ["curl", "-sf", "-o", "/dev/null", "-r", f"{i * step}-{min(size, (i + 1) * step) - 1}", "-w", "%{time_starttransfer}", url],
            stdout=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]
    times = []
    for curl in curls:
        out, _ = curl.communicate()
        if curl.returncode:
            sys.exit(f"ranged: curl exited with {curl.returncode}")
        times.append(float(out))
    return time.monotonic() - start, times


def ranged_client(address, path, size, range_bytes, n):
    """The worker's pattern with a plain client: N keep-alive connections through the proxy, each
    taking the next `range_bytes` range in turn and reading it into a reused buffer. Wall seconds."""
    host, port = address.rsplit(":", 1)
    starts = iter(range(0, size, range_bytes))
    lock, errors = threading.Lock(), []

    def fetch():
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        buffer = bytearray(1 << 20)
        while True:
            with lock:
                start = next(starts, None)
            if start is None:
                return
            connection.request("GET", path, headers={"Range": f"bytes={start}-{min(size, start + range_bytes) - 1}"})
            response = connection.getresponse()
            if response.status != 206:
                errors.append(response.status)
                return
            while response.readinto(buffer):
                pass

    began = time.monotonic()
    threads = [threading.Thread(target=fetch) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"ranged: a plain ranged GET answered {errors[0]}")
    return time.monotonic() - began


def path_and_query(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def spread(rates):
    """Per-connection rates as `count: min-max (median)` MB/s."""
    if not rates:
        return "-"
    return f"{len(rates)}: {rates[0]:.0f}-{rates[-1]:.0f} ({rates[len(rates) // 2]:.0f})"


def cores(pid, before, seconds):
    return (cpu_seconds(pid) - before) / seconds if pid and seconds > 0 else None


def ceiling(args, url_of, size, n, moto_pid, range_bytes=None):
    """The source's aggregate ceiling over N paced connections, and the per-connection rates:
    N curl GETs of size/N each, or (with `range_bytes`) the worker's pattern of many ranges."""
    pace = Pace(args.pace, args.rate_mb_s, args.first_byte_ms, args.upstream)
    moto_before, pace_before = cpu_seconds(moto_pid) if moto_pid else 0, cpu_seconds(pace.pid)
    load = os.getloadavg()[0]
    began = time.time()
    if range_bytes:
        wall, first_bytes = ranged_client(pace.address, path_and_query(url_of(pace.url)), size, range_bytes, n), [None]
    else:
        wall, first_bytes = parallel_curl(url_of(pace.url), size, n)
    moto_cores, pace_cores = cores(moto_pid, moto_before, wall), cores(pace.pid, pace_before, wall)
    connections = pace.stop()
    keep_timeline(f"ceiling-{size >> 20}-{n}x{(range_bytes or size // n) >> 20}-{began:.0f}", began, connections)
    return {
        "size": size, "n": n, "wall": wall, "aggregate": size / wall, "load": load, "first_byte": max(first_bytes) if first_bytes[0] is not None else None, "range_bytes": range_bytes,
        "rates": sorted(c["down_mb_s"] for c in connections if c["down_bytes"]),
        "moto_cores": moto_cores, "pace_cores": pace_cores,
    }


# BENCH_TIMELINE=DIR keeps each run's proxy connections (opened_at, first_down_secs,
# last_down_secs: a timeline of the requests) in DIR, one JSON file per run.
TIMELINE_DIR = os.environ.get("BENCH_TIMELINE")


def keep_timeline(name, started, connections):
    if TIMELINE_DIR:
        os.makedirs(TIMELINE_DIR, exist_ok=True)
        with open(os.path.join(TIMELINE_DIR, f"{name}.json"), "w") as f:
            json.dump({"started": started, "connections": connections}, f)


LONG_POLL_S = 20  # the worker's SQS long poll (observe::LONG_POLL_WAIT)
last_stop = [float("-inf")]  # when the last worker stopped, by time.monotonic()


def worker_run(args, label, extra_env, size, body, bucket, queue_url, database_url, moto_pid, serial, proxied=True):
    """One object through a fresh worker (and a fresh proxy when `proxied`)."""
    pace = Pace(args.pace, args.rate_mb_s, args.first_byte_ms, args.upstream) if proxied else None
    log_path = os.path.join(tempfile.mkdtemp(prefix="docworker-ranged-"), "docworker.log")
    extra_env = dict(extra_env)
    binary = extra_env.pop("WORKER", args.worker)
    env = large_object_env(database_url, queue_url, size, "info,docworker=debug", **extra_env)
    if pace:
        env["AWS_ENDPOINT_URL_S3"] = pace.url
    key = f"medical/ranged/{serial:03d}-large.dcm"
    worker = Process("docworker", [binary, "run", "--no-migrate"], env, log_path, database_url, bucket, "documents", "status = 'finalized'")
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    try:
        deadline = time.monotonic() + 60
        while queue_depth(sqs, queue_url):
            worker.check()
            if time.monotonic() > deadline:
                sys.exit("ranged: the worker did not drain the queue within 60 s")
            time.sleep(0.1)
        done_before = worker.count()
        # A stopped worker's last long poll stays open in moto for its 20 s and takes the next
        # message, which then comes back only after the visibility timeout (60 s): the next upload
        # waits for that poll to end.
        time.sleep(max(0.0, LONG_POLL_S + 1 - (time.monotonic() - last_stop[0])))
        upload_large(bucket, key, body, args.multipart_mib)
        put_returned = time.time()
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(worker.pid)
        moto_before = cpu_seconds(moto_pid) if moto_pid else 0
        pace_before = cpu_seconds(pace.pid) if pace else 0
        deadline = time.monotonic() + 600
        while worker.count() <= done_before:
            if time.monotonic() > deadline:
                sys.exit(f"ranged: {label}: the object was not finalized within 600 s; log: {log_path}")
            time.sleep(0.02)
        seen = time.time() - put_returned
        cpu = cpu_seconds(worker.pid) - cpu_before
        moto_cores = cores(moto_pid, moto_before, seen)
        pace_cores = cores(pace.pid, pace_before, seen) if pace else None
        rss = peak_rss_mib(worker.pid)
        row = worker.db.execute(
            "SELECT integrity, sha256, extract(epoch FROM processed_at)::float8 FROM documents WHERE bucket = %s AND file_key = %s",
            (bucket, key),
        ).fetchone()
        deadline = time.monotonic() + 30
        while (times := settled_times(log_path, wait=time.monotonic() < deadline)) is None:
            time.sleep(0.1)
    finally:
        worker.stop()
        last_stop[0] = time.monotonic()
        connections = pace.stop() if pace else []
        keep_timeline(f"{label}-{size >> 20}-{serial:03d}", put_returned, connections)
        s3.delete_object(Bucket=bucket, Key=key)
    return {
        "label": label, "size": size, "load": load, "event_to_row": row[2] - put_returned,
        "duration": times["duration_ms"], "fetch": times["fetch_ms"], "stream": times["stream_ms"],
        "cpu": cpu, "rss": rss, "integrity": row[0], "sha256": bytes(row[1]).hex() if isinstance(row[1], (bytes, memoryview)) else row[1],
        "moto_cores": moto_cores, "pace_cores": pace_cores,
        "connections": len([c for c in connections if c["down_bytes"] > 1 << 20]),
        "rates": sorted(c["down_mb_s"] for c in connections if c["down_bytes"] > 1 << 20),
        "log": log_path, "timeline": timeline(log_path, put_returned),
    }


def timeline(log_path, put_returned):
    """Seconds after put_object returned at which the worker's debug log shows each step of the
    object: the receive that brought its message, the start of its processing, GetObject's answer,
    the body's last byte, and the `object settled` line (after the row's commit and the tagging)."""
    def at(record):
        stamp = record["timestamp"].rstrip("Z")
        whole, _, fraction = stamp.partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + float(f"0.{fraction or 0}") - put_returned

    steps = {}
    with open(log_path) as f:
        for line in f:
            record = json.loads(line)
            message = record.get("message")
            if message == "messages received" and record.get("messages") and "received" not in steps and at(record) > -1:
                steps["received"] = at(record)
            elif "large.dcm" not in line:
                continue
            elif message == "processing object":
                steps["processing"] = at(record)
            elif message == "body read":
                steps["last_byte"] = at(record)
                steps["first_byte"] = steps["last_byte"] - record["stream_ms"] / 1000
            elif message == "object settled":
                steps["settled"] = at(record)
    return steps


def curl_direct(url):
    out = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{time_total} %{time_starttransfer}", url], capture_output=True, text=True, check=True)
    total, first = map(float, out.stdout.split())
    return total, first


def parse_variant(text):
    label, _, assignments = text.partition("=")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return label, env


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mib", default="256,1024")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--connections", default="1,8", help="connection counts for the plain-client ceiling")
    parser.add_argument("--variant", action="append", type=parse_variant,
                        help="LABEL=ENV=VALUE,... (default: one variant, 'default', no added environment); WORKER=PATH runs that binary instead of --worker")
    parser.add_argument("--worker", help="a docworker binary (default: target/release/docworker, built here)")
    parser.add_argument("--pace", help="a docworker-pace binary (default: target/release/docworker-pace, built here)")
    parser.add_argument("--rate-mb-s", type=float, default=100.0)
    parser.add_argument("--first-byte-ms", type=int, default=150)
    parser.add_argument("--multipart-mib", type=int, default=0, help="upload in parts of this size (0: one PutObject)")
    parser.add_argument("--direct", type=int, default=0, help="pairs of unproxied 256 MiB runs: worker event to row vs curl")
    parser.add_argument("--direct-variant", action="append", type=parse_variant,
                        help="as --variant, for the --direct pairs: each pair runs curl, then every direct variant (default: one, 'default')")
    parser.add_argument("--skip-proxied", action="store_true", help="only the --direct pairs")
    parser.add_argument("--no-worker", action="store_true", help="only the plain-client ceilings (the proxy check)")
    parser.add_argument("--ranged-ceilings", default="8:8", help="MIB:N,...: plain-client ceilings with N connections taking MIB-sized ranges in turn")
    parser.add_argument("--source", choices=["patched", "stock"], default="patched",
                        help="patched: a private moto whose ranged GETs cost the range (bench/moto_ranges); stock: the stack's moto")
    parser.add_argument("--moto-port", type=int, default=4570)
    parser.add_argument("--database", default="docworker_bench_ranged",
                        help="the bench database (one per tree migrated: an older binary refuses a newer schema)")
    args = parser.parse_args()
    sizes = [int(mib) << 20 for mib in args.sizes_mib.split(",")]
    counts = [int(n) for n in args.connections.split(",")]
    patterns = [tuple(int(x) for x in item.split(":")) for item in args.ranged_ceilings.split(",") if item]
    variants = args.variant or [("default", {})]

    e2e.BENCH_DATABASE = args.database
    database_url = setup(args.worker)
    args.worker = args.worker or e2e.RELEASE_WORKER
    if args.pace is None:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "docworker-pace"], cwd=e2e.root, check=True)
        args.pace = RELEASE_PACE
    moto = None
    if args.source == "patched":
        moto = private_moto(args.moto_port)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{args.moto_port}"
    args.upstream = os.environ["AWS_ENDPOINT_URL"].split("//", 1)[1].rstrip("/")
    moto_pid, moto_python = moto_process()
    sha256 = openssl_speed("sha256")
    bucket, queue_url = wire("ranged")
    s3 = boto3.client("s3")
    ceilings, runs, direct = [], [], []
    serial = 0
    try:
        for size in sizes if not args.skip_proxied else []:
            body = large_dicom(size)
            # The ceiling's object: uploaded under a prefix the queue does not hear about.
            s3.put_object(Bucket=bucket, Key="ceiling/large.dcm", Body=body)
            for repetition in range(args.repeat):
                for n in counts:
                    ceilings.append(ceiling(args, lambda endpoint: presigned(endpoint, bucket, "ceiling/large.dcm"), size, n, moto_pid))
                    print(f"ceiling {size >> 20} MiB x{n}: {ceilings[-1]['aggregate'] / 1e6:.0f} MB/s, per connection {ceilings[-1]['rates']}", file=sys.stderr)
                for mib, n in patterns:
                    ceilings.append(ceiling(args, lambda endpoint: presigned(endpoint, bucket, "ceiling/large.dcm"), size, n, moto_pid, mib << 20))
                    print(f"ceiling {size >> 20} MiB x{n} of {mib} MiB ranges: {ceilings[-1]['aggregate'] / 1e6:.0f} MB/s", file=sys.stderr)
                for label, env in variants if not args.no_worker else []:
                    serial += 1
                    runs.append(worker_run(args, label, env, size, body, bucket, queue_url, database_url, moto_pid, serial))
                    r = runs[-1]
                    print(f"{label} {size >> 20} MiB: row after {r['event_to_row']:.2f} s, {r['connections']} connections {r['rates']}", file=sys.stderr)
            s3.delete_object(Bucket=bucket, Key="ceiling/large.dcm")
            del body
        if args.direct:
            size = 256 << 20
            body = large_dicom(size)
            s3.put_object(Bucket=bucket, Key="ceiling/large.dcm", Body=body)
            url = presigned(os.environ["AWS_ENDPOINT_URL"], bucket, "ceiling/large.dcm")
            for _ in range(args.direct):
                for label, env in args.direct_variant or [("default", {})]:
                    load = os.getloadavg()[0]
                    total, first = curl_direct(url)
                    serial += 1
                    run = worker_run(args, label, env, size, body, bucket, queue_url, database_url, moto_pid, serial, proxied=False)
                    direct.append({"curl": total, "curl_first": first, "curl_load": load, **run})
                    print(f"direct {label}: curl {total:.2f} s, worker row after {run['event_to_row']:.2f} s", file=sys.stderr)
            s3.delete_object(Bucket=bucket, Key="ceiling/large.dcm")
    finally:
        sqs = boto3.client("sqs")
        for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]:
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{bucket}-dlq")["QueueUrl"])
        if moto:
            moto.terminate()
            moto.wait()

    print(e2e.machine(moto_python))
    print(f"openssl speed -evp sha256 (1 core, 64 KiB blocks): {sha256 / 1e9:.2f} GB/s; proxy: {args.rate_mb_s:g} MB/s per connection, "
          f"first byte {args.first_byte_ms} ms after the request; upload: {'one PutObject' if not args.multipart_mib else f'multipart, {args.multipart_mib} MiB parts'}")
    print(f"source: {'private moto, ranged GETs cost the range (bench/moto_ranges)' if moto else 'the stack moto (each GET reads the whole object)'}")
    shown = (args.direct_variant or [("default", {})]) if args.skip_proxied else variants
    print(f"worker: {args.worker}; variants: " + "; ".join(f"{label} {env or '(no added environment)'}" for label, env in shown))
    if ceilings:
        print()
        print("Plain client through the proxy: N concurrent curl range GETs of size/N bytes, or N connections taking R-byte ranges in turn")
        print()
        print("| object | N | pattern | load | wall s | latest first byte s | aggregate MB/s | connections: MB/s min-max (median), by the proxy | moto cores | proxy cores |")
        print("|---|---:|---|---:|---:|---:|---:|---|---:|---:|")
        for c in ceilings:
            rates = spread(c["rates"])
            pattern = f"{c['range_bytes'] >> 20} MiB ranges" if c["range_bytes"] else "curl, size/N each"
            print(f"| {c['size'] >> 20} MiB | {c['n']} | {pattern} | {c['load']:.2f} | {c['wall']:.2f} | {fmt(c['first_byte'])} | {c['aggregate'] / 1e6:.0f} | {rates} | {fmt(c['moto_cores'])} | {fmt(c['pace_cores'])} |")
    if runs:
        print()
        print("Worker through the proxy")
        print()
        print("| object | variant | load | put to row s | duration s | first byte s | streaming s | MB/s | of SHA-256 | CPU s/GiB | peak RSS MiB | moto cores | proxy cores | connections: MB/s min-max (median) | integrity |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for r in runs:
            rate = r["size"] / r["duration"]
            rates = spread(r["rates"])
            print(
                f"| {r['size'] >> 20} MiB | {r['label']} | {r['load']:.2f} | {r['event_to_row']:.2f} | {r['duration']:.2f} | {r['fetch']:.2f} | {r['stream']:.2f} | "
                f"{rate / 1e6:.0f} | {rate / sha256:.1%} | {r['cpu'] * (1 << 30) / r['size']:.2f} | {r['rss']:.1f} | {fmt(r['moto_cores'])} | {fmt(r['pace_cores'])} | "
                f"{rates} | {r['integrity']} |"
            )
        hashes = {}
        for r in runs:
            hashes.setdefault(r["size"], set()).add(r["sha256"])
        print()
        print("sha256 identical across variants per size: " + ", ".join(f"{s >> 20} MiB {len(h) == 1}" for s, h in hashes.items()))
    if direct:
        print()
        print("Without the proxy, 256 MiB, each worker variant after its own plain streamed GET (curl) from moto, alternated")
        print()
        print("| run | variant | load | curl total s (first byte s) | worker put to row s | worker duration s (first byte, streaming) | curl / put-to-row | curl / duration | CPU s | peak RSS MiB |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, d in enumerate(direct, start=1):
            print(
                f"| {i} | {d['label']} | {d['curl_load']:.2f} | {d['curl']:.2f} ({d['curl_first']:.2f}) | {d['event_to_row']:.2f} | {d['duration']:.2f} ({d['fetch']:.2f}, {d['stream']:.2f}) | "
                f"{d['curl'] / d['event_to_row']:.2f} | {d['curl'] / d['duration']:.2f} | {d['cpu']:.2f} | {d['rss']:.1f} |"
            )
        print()
        print("Where the time went (seconds after put_object returned, from the worker's debug log; row = documents.processed_at)")
        print()
        print("| run | message received | processing starts | first byte | last byte | row committed | settled (tagged) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for i, d in enumerate(direct, start=1):
            t = d["timeline"]
            print(f"| {i} | {fmt(t.get('received'))} | {fmt(t.get('processing'))} | {fmt(t.get('first_byte'))} | {fmt(t.get('last_byte'))} | {d['event_to_row']:.2f} | {fmt(t.get('settled'))} |")
    print()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
