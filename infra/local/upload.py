"""Uploads a folder of sample files to the local bucket, as the clinic platform's browser
upload would: one PutObject each, with the x-amz-meta-* facts the upload path attaches.

A file named `medical__scan.dcm` goes to key `medical/<run>/scan.dcm`. Prints the keys."""

import json
import mimetypes
import pathlib
import sys

import boto3

folder, run = pathlib.Path(sys.argv[1]), sys.argv[2]
bucket = json.loads((pathlib.Path(__file__).parent / "wiring.json").read_text())["bucket"]
s3 = boto3.client("s3")
mimetypes.add_type("application/dicom", ".dcm")
for path in sorted(folder.iterdir()):
    category, _, name = path.name.partition("__")
    key = f"{category}/{run}/{name}"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=path.read_bytes(),
        ContentType=mimetypes.guess_type(name)[0] or "application/octet-stream",
        Metadata={
            "original-filename": name,
            "uploaded-by": "demo-user",
            "case-id": f"case-{run}",
            "title": name.rsplit(".", 1)[0].replace("-", " "),
        },
    )
    print(key)
