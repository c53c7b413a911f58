"""Streaming: one 1 GiB DICOM object through the release worker (GetObject -> SHA-256 and the SDK's
CRC32 check -> sniff -> header parse -> row), against this machine's single-core digest speeds
measured in the same run with `openssl speed -evp sha256` and `-evp md5`.

The object is uploaded with boto3 (which sends a CRC32 checksum, as current AWS SDKs do and as S3
now stores for every object), so the worker verifies the transfer with the SDK's CRC32 and computes
no MD5: the slowest digest it computes is SHA-256. Reported: the worker's processing time (the
`duration_ms` of its `object settled` line, from the start of the object to its committed row,
split into the wait for GetObject's answer and the streaming of the body, from its `body read` line), throughput as a fraction of
openssl's SHA-256 speed, the worker's CPU time for the object, its peak RSS (VmHWM), and how fast
moto itself serves the same object to curl (the source's own ceiling, since moto is a Python
server).

With `--scan`, the worker also streams the object to a clamd of its own (started here with the
project's test signatures and `StreamMaxLength` raised to fit the object), so that the two runs
compare throughput, CPU and memory with and without the scan overlapping the download; the
clamd's own CPU time and peak RSS are reported apart, and, from the worker's scanner lines, how
long after the stream's last byte clamd answered (clamd spools an INSTREAM and scans it once it
has ended), so that the total can be read against max(download, scan) and their sum.

With `--multipart-mib N` the object is uploaded in N MiB parts instead (8: the AWS CLI's default),
with the CLI's default per-part CRC32s (a composite CRC32, checked per part by the worker) or,
with `--checksum none`, with no checksum at all as a browser uploader sends it (the multipart
ETag, checked by an MD5 per part). `--checksum none` on a single PutObject leaves the ETag's MD5.

Usage: python3 bench/stream.py [--gib 1] [--worker PATH] [--scan] [--multipart-mib 0] [--checksum crc32|none]
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import e2e  # installs what is missing and re-executes in the venv; also root and the binary path
from e2e import Process, cpu_seconds, large_object_env, peak_rss_mib, queue_depth, setup, upload_large, wire

import boto3
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

KEY = "medical/stream/large.dcm"


def large_dicom(size):
    """A Part 10 file of exactly `size` bytes: a small header, then one Pixel Data element."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.PatientID = "STREAM0001"
    ds.StudyDate = "20261125"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    buffer = io.BytesIO()
    # Frames of 4096x4096 16-bit pixels: the header's geometry roughly matches the pixel bytes.
    ds.Rows, ds.Columns = 4096, 4096
    ds.NumberOfFrames = size // (4096 * 4096 * 2)
    ds.save_as(buffer, enforce_file_format=True)
    header = buffer.getvalue()
    pixels = size - len(header) - 12
    assert pixels > 0 and pixels % 2 == 0
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + pixels.to_bytes(4, "little")
    mib = os.urandom(1 << 20)
    return b"".join([header, element, *[mib] * (pixels >> 20), os.urandom(pixels & ((1 << 20) - 1))])


def openssl_speed(algorithm):
    """Single-core bytes/s for 64 KiB blocks (the size of the chunks the worker hashes)."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "3", "-bytes", "65536", "-evp", algorithm], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.lower().startswith(algorithm))
    return float(line.split()[-1].rstrip("k")) * 1000


def curl_speed(bucket):
    """moto serving the object to curl: bytes/s over the whole request, and seconds to the first
    byte (moto reads the whole object before it answers)."""
    url = boto3.client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=600)
    out = subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "-w", "%{speed_download} %{time_starttransfer}", url],
        capture_output=True, text=True, check=True,
    )
    speed, first_byte = out.stdout.split()
    return float(speed), float(first_byte)


def private_clamd(size):
    """A clamd on a free port, loading infra/local/clamav, with its limits above `size`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="docworker-bench-clamd-")
    limit = f"{(size >> 20) + 16}M"
    conf = os.path.join(folder, "clamd.conf")
    with open(conf, "w") as f:
        f.write(
            f"DatabaseDirectory {os.path.join(e2e.root, 'infra', 'local', 'clamav')}\n"
            f"TCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\nLogFile {folder}/clamd.log\n"
            f"StreamMaxLength {limit}\nMaxFileSize {limit}\nMaxScanSize {limit}\nMaxScanTime 300000\nAlertExceedsMax yes\n"
        )
    clamd = subprocess.Popen(["/usr/sbin/clamd", f"--config-file={conf}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"zPING\0")
                if s.recv(16) == b"PONG\0":
                    return clamd, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    clamd.kill()
    sys.exit("stream: the private clamd did not answer PING (is clamav-daemon installed? infra/local/stack.sh services)")


def settled_times(log_path, wait=False):
    """From the worker's log: the object's `duration_ms` (start of the object to the committed row,
    on its `object settled` line), and `fetch_ms` (until GetObject answered) and `stream_ms`
    (reading the body) from its `body read` line, which the worker writes at debug; `None`
    while they are not both there yet and `wait` allows it."""
    times = {}
    with open(log_path) as f:
        for line in f:
            if "large.dcm" not in line:
                continue
            record = json.loads(line)
            if record.get("message") == "object settled":
                times["duration_ms"] = record["duration_ms"] / 1000
            elif record.get("message") == "body read":
                times["fetch_ms"] = record["fetch_ms"] / 1000
                times["stream_ms"] = record["stream_ms"] / 1000
    if len(times) != 3:
        if wait:
            return None
        sys.exit(f"stream: no 'object settled' and 'body read' lines for the object in {log_path}")
    return times


def scan_times(log_path):
    """From the scanner's debug lines (one object per run): seconds from the scan's first chunk to
    the end of the stream sent to clamd, to clamd's verdict, and the bytes still queued for clamd
    when the stream ended."""
    times = {}
    with open(log_path) as f:
        for line in f:
            record = json.loads(line)
            if record.get("message") == "stream to clamd ended":
                times["streamed"] = record["elapsed_ms"] / 1000
                times["backlog"] = record["backlog"]
            elif record.get("message") == "scan finished":
                times["verdict"] = record["elapsed_ms"] / 1000
                times["label"] = record["verdict"]
    if len(times) != 4:
        sys.exit(f"stream: no scanner lines ('stream to clamd ended', 'scan finished') in {log_path}")
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--worker", help="a docworker binary to measure instead of building target/release/docworker")
    parser.add_argument("--scan", action="store_true", help="scan the object with a private clamd while it streams")
    parser.add_argument("--multipart-mib", type=int, default=0, help="upload in parts of this size (0: one PutObject)")
    parser.add_argument("--checksum", choices=["crc32", "none"], default="crc32", help="the checksum the upload sends (default: CRC32, as the SDKs and the CLI do)")
    args = parser.parse_args()
    size = int(args.gib * (1 << 30)) & ~1

    database_url = setup(args.worker)
    sha256, md5 = openssl_speed("sha256"), openssl_speed("md5")
    body = large_dicom(size)
    bucket, queue_url = wire("stream")
    log_path = os.path.join(tempfile.mkdtemp(prefix="docworker-stream-"), "docworker.log")
    # One stream, as this bench measures it against moto: stock moto reads an object's whole
    # value for every ranged GET (bench/ranged.py measures ranged reads, through the pacing proxy).
    env = large_object_env(
        database_url,
        queue_url,
        size,
        "info,docworker::process=debug,docworker::scanner=debug",
        DOCWORKER_RANGED_THRESHOLD_BYTES=str(1 << 40),
    )
    clamd = None
    if args.scan:
        clamd, address = private_clamd(size)
        env.update(DOCWORKER_CLAMD_ADDR=address, DOCWORKER_SCAN_MAX_BYTES=str(size + (1 << 20)))
    argv = [args.worker or e2e.RELEASE_WORKER, "run", "--no-migrate"]
    worker = Process("docworker", argv, env, log_path, database_url, bucket, "documents", "status = 'finalized'")
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    try:
        deadline = time.monotonic() + 60
        while queue_depth(sqs, queue_url):
            worker.check()
            if time.monotonic() > deadline:
                sys.exit("stream: the worker did not take the s3:TestEvent within 60 s")
            time.sleep(0.1)
        upload_large(bucket, KEY, body, args.multipart_mib, None if args.checksum == "none" else "CRC32")
        del body
        cpu_before = cpu_seconds(worker.pid)
        deadline = time.monotonic() + 600
        while worker.count() < 1:
            if time.monotonic() > deadline:
                sys.exit(f"stream: the object was not finalized within 600 s; log: {log_path}")
            time.sleep(0.05)
        cpu = cpu_seconds(worker.pid) - cpu_before
        rss = peak_rss_mib(worker.pid)
        integrity = worker.db.execute("SELECT integrity FROM documents WHERE bucket = %s", (bucket,)).fetchone()[0]
        # The row commits before the object is tagged and its `object settled` line written.
        deadline = time.monotonic() + 30
        while (times := settled_times(log_path, wait=time.monotonic() < deadline)) is None:
            time.sleep(0.1)
        moto, moto_first_byte = curl_speed(bucket)
        clamd_cpu = cpu_seconds(clamd.pid) if clamd else None
        clamd_rss = peak_rss_mib(clamd.pid) if clamd else None
    finally:
        worker.stop()
        if clamd:
            clamd.kill()
        s3.delete_object(Bucket=bucket, Key=KEY)
        s3.delete_bucket(Bucket=bucket)
        sqs.delete_queue(QueueUrl=queue_url)

    duration, streaming = times["duration_ms"], times["stream_ms"]
    throughput, streamed = size / duration, size / streaming
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown"
    )
    scanning = "scanned by clamd while streaming" if args.scan else "not scanned"
    uploaded = f"{args.multipart_mib} MiB parts" if args.multipart_mib else "one PutObject"
    print(f"{size / (1 << 30):.2f} GiB DICOM object, {uploaded}, checksum {args.checksum}, {scanning}; "
          f"{os.cpu_count()} CPUs, {cpu_model}; load average {os.getloadavg()[0]:.2f}")
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| openssl speed -evp sha256 (1 core, 64 KiB blocks) | {sha256 / 1e9:.2f} GB/s |")
    print(f"| openssl speed -evp md5 (1 core, 64 KiB blocks) | {md5 / 1e9:.2f} GB/s |")
    print(f"| integrity check the worker used | {integrity} |")
    print(f"| worker: object start to committed row | {duration:.2f} s |")
    print(f"| of which waiting for GetObject's answer (moto's first byte) | {times['fetch_ms']:.2f} s |")
    print(f"| of which streaming the body (first to last byte: hash, sniff, header; and the scan's answer) | {streaming:.2f} s |")
    print(f"| worker throughput, whole object | {throughput / 1e9:.2f} GB/s = {throughput / sha256:.0%} of SHA-256 |")
    print(f"| worker throughput, streaming the body | {streamed / 1e9:.2f} GB/s = {streamed / sha256:.0%} of SHA-256 |")
    print(f"| worker CPU time for the object | {cpu:.2f} s ({size / cpu / 1e9:.2f} GB per CPU-second) |")
    print(f"| worker peak RSS (VmHWM) | {rss:.1f} MiB |")
    if clamd_cpu is not None:
        scan = scan_times(log_path)
        after = scan["verdict"] - scan["streamed"]
        print(f"| clamd CPU time (its own process, signatures loaded included) | {clamd_cpu:.2f} s |")
        print(f"| clamd peak RSS (VmHWM) | {clamd_rss:.1f} MiB |")
        print(f"| scan verdict | {scan['label']} |")
        print(f"| stream to clamd: first chunk to last byte sent | {scan['streamed']:.2f} s |")
        print(f"| bytes still queued for clamd when the stream ended | {scan['backlog']} |")
        print(f"| clamd's answer after the last byte (its scan of the spooled stream) | {after:.2f} s |")
        # The body's line is written once every reader is done, the scan's answer included.
        print(f"| of the body's streaming: the download feeding clamd, then clamd's answer | {scan['streamed']:.2f} s + {after:.2f} s of {streaming:.2f} s |")
    print(f"| moto serving the same object to curl | {moto / 1e9:.2f} GB/s, first byte after {moto_first_byte:.2f} s |")
    print(f"| worker throughput / moto to curl | {throughput / moto:.0%} |")


if __name__ == "__main__":
    main()
