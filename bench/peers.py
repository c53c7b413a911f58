"""Header extraction, docworker against the peers a team would otherwise use, on the same files,
on the same machine, in one run:

- docworker: dicom-rs parse up to Pixel Data + promoted columns + DICOM JSON (release build),
- pydicom: dcmread(stop_before_pixels=True) followed by to_json_dict(), from memory,
- dcmtk: dcmdump +sd (stop before pixel data), one process per file (includes process start).

pydicom and dcmtk are installed when missing (pip into .local/venv; apt-get install dcmtk).

Files: every Part 10 file in pydicom's test data that both docworker and pydicom accept.
Prints a Markdown table and the ratios. Usage: python3 bench/peers.py [ITERATIONS]
"""

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import e2e  # noqa: F401  (installs pydicom into .local/venv and re-executes there when it is missing)
import pydicom

if shutil.which("dcmdump") is None:
    # dcmtk from Debian's packages, as the README's set-up installs system packages.
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "dcmtk"], check=True)

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "-q", "--release", "-p", "docworker-shared", "--features", "fixtures", "--example", "header_bench"], cwd=root, check=True)
tool = os.path.join(root, "target", "release", "examples", "header_bench")
data = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
files = []
for name in sorted(os.listdir(data)):
    path = os.path.join(data, name)
    if os.path.isfile(path):
        with open(path, "rb") as f:
            if f.read(132)[128:132] == b"DICM":
                files.append(path)

ours = {}
for line in subprocess.run([tool, str(iterations)] + files, capture_output=True, text=True, check=True).stdout.splitlines():
    entry = json.loads(line)
    if entry["ok"]:
        ours[entry["file"]] = entry

rows = []
dcmdump = shutil.which("dcmdump")
for path, entry in ours.items():
    raw = open(path, "rb").read()
    try:
        pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "")
    except Exception:
        continue
    n = max(1, iterations // 10)
    started = time.perf_counter()
    for _ in range(n):
        pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "")
    py_us = (time.perf_counter() - started) * 1e6 / n
    dump_us = None
    if dcmdump:
        m = 5
        started = time.perf_counter()
        for _ in range(m):
            subprocess.run([dcmdump, "-q", "+sd", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dump_us = (time.perf_counter() - started) * 1e6 / m
    rows.append((os.path.basename(path), entry["bytes"], entry["micros"], py_us, dump_us))

print("| file | bytes | docworker µs | pydicom µs | ratio | dcmdump µs (process) |")
print("|---|---:|---:|---:|---:|---:|")
for name, size, us, py, dump in rows:
    print(f"| {name} | {size} | {us:.1f} | {py:.1f} | {py / us:.1f}× | {'' if dump is None else f'{dump:.0f}'} |")
ratios = [py / us for _, _, us, py, _ in rows]
print()
print(f"files: {len(rows)}; pydicom/docworker ratio: median {statistics.median(ratios):.1f}×, min {min(ratios):.1f}×, max {max(ratios):.1f}×")
print(f"total: docworker {sum(r[2] for r in rows):.0f} µs, pydicom {sum(r[3] for r in rows):.0f} µs ({sum(r[3] for r in rows) / sum(r[2] for r in rows):.1f}×)")
if dcmdump:
    dumps = [r[4] for r in rows]
    print(f"dcmdump (one process per file, start-up included): median {statistics.median(dumps):.0f} µs")
