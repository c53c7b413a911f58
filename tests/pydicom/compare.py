"""Compares docworker's DICOM header extraction with pydicom, an independent reader, on every
Part 10 file in pydicom's own test data (real files from many modalities, vendors and transfer
syntaxes). For each file pydicom reads with Study and SOP Instance UIDs, docworker must accept it
and agree on the promoted columns and on the whole DICOM JSON (pydicom's to_json_dict, with
binary values above 1 KiB and Pixel Data left out). Exits non-zero on any disagreement.

Usage: python3 tests/pydicom/compare.py PATH/TO/examples/header
"""

import json
import os
import subprocess
import sys

import pydicom

# Files pydicom reads that docworker rejects on purpose, with the reason.
EXPECTED_REJECTIONS = {
    # Declares explicit VR but is encoded implicit; pydicom guesses, docworker refuses to guess.
    "SC_rgb_jpeg.dcm": "DICOM header",
    # Cut short inside the header: pydicom returns what it read, docworker rejects it.
    "rtplan_truncated.dcm": "DICOM header unreadable",
}


def normalised(value):
    """Trailing spaces in string values are padding (PS3.5 6.2); pydicom keeps some."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, str):
        return value.rstrip(" ")
    return value


def comparable(tag, ours, theirs):
    """Differences that are choices, not errors: private attributes (pydicom names their VRs from
    its private dictionary, docworker keeps them as stored) and sequences stored as UN (pydicom
    parses them, docworker keeps the bytes)."""
    if int(tag[:4], 16) % 2 == 1:
        return False
    if ours and theirs and ours.get("vr") == "UN" and theirs.get("vr") == "SQ":
        return False
    return True


def without_bulk(value):
    """pydicom's JSON with the bulk-data stand-ins removed at any depth."""
    if isinstance(value, dict):
        return {k: without_bulk(v) for k, v in value.items() if not (isinstance(v, dict) and "BulkDataURI" in v)}
    if isinstance(value, list):
        return [without_bulk(v) for v in value]
    return value


def main():
    header_tool = sys.argv[1]
    data = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    files = []
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            if f.read(132)[128:132] == b"DICM":
                files.append(path)
    lines = subprocess.run([header_tool, "--json"] + files, capture_output=True, text=True, check=True).stdout
    ours = {entry["file"]: entry for entry in map(json.loads, lines.splitlines())}
    problems, compared = [], 0
    for path in files:
        name = os.path.basename(path)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue  # pydicom cannot read it either
        if not ds.get("StudyInstanceUID") or not ds.get("SOPInstanceUID"):
            continue  # docworker rejects these by design (no Study or SOP Instance UID)
        entry = ours[path]
        if "rejected" in entry:
            if not entry["rejected"].startswith(EXPECTED_REJECTIONS.get(name, "\0")):
                problems.append(f"{name}: rejected: {entry['rejected']}")
            continue
        compared += 1
        expected = {
            "study_instance_uid": str(ds.StudyInstanceUID),
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "series_instance_uid": str(ds.SeriesInstanceUID) if ds.get("SeriesInstanceUID") else None,
            "modality": str(ds.Modality) if ds.get("Modality") else None,
            "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        }
        for column, value in expected.items():
            if entry.get(column) != value:
                problems.append(f"{name}: {column} {entry.get(column)!r} != pydicom {value!r}")
        try:
            reference = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "bulk")
        except ValueError:
            continue  # pydicom cannot express this file as JSON (e.g. an IS value of "1A")
        reference = without_bulk(reference)
        reference = {k: v for k, v in reference.items() if not k.startswith("7FE0")}
        reference = normalised(reference)
        for tag in sorted(set(reference) | set(entry["dicom"])):
            ours_value, theirs = entry["dicom"].get(tag), reference.get(tag)
            if comparable(tag, ours_value, theirs) and normalised(ours_value) != theirs:
                problems.append(f"{name}: {tag}: ours {json.dumps(entry['dicom'].get(tag))[:120]} != pydicom {json.dumps(reference.get(tag))[:120]}")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"pydicom comparison: {compared} files compared, {len(problems)} disagreements")
    sys.exit(1 if problems or compared < 20 else 0)


main()
