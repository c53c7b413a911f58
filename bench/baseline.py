"""The baseline a team would otherwise write for docworker's job, run by bench/e2e.py: one Python
process with K threads, each looping over receive_message (up to 10, 1 s long poll) and, for every
S3 event record in a message: GetObject, read the body, SHA-256 it, parse the DICOM header with
pydicom (stop_before_pixels) into DICOM JSON, and upsert a row into baseline_documents (one
psycopg connection per thread, autocommit); then delete_message. The s3:TestEvent is deleted
unprocessed. A message whose processing fails is left on the queue. Runs until SIGTERM.

Usage: python3 bench/baseline.py --threads K --queue-url URL --database-url URL
(endpoint and credentials from the standard AWS_* environment variables)
"""

import argparse
import hashlib
import io
import json
import signal
import sys
import threading
import traceback
from urllib.parse import unquote_plus

import boto3
import psycopg
import pydicom
from psycopg.types.json import Jsonb

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_documents (
    bucket             text        NOT NULL,
    file_key           text        NOT NULL,
    sha256             text        NOT NULL,
    study_instance_uid text,
    sop_instance_uid   text,
    dicom              jsonb,
    processed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (bucket, file_key)
)"""
UPSERT = """
INSERT INTO baseline_documents (bucket, file_key, sha256, study_instance_uid, sop_instance_uid, dicom)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (bucket, file_key) DO UPDATE SET
    sha256 = excluded.sha256, study_instance_uid = excluded.study_instance_uid,
    sop_instance_uid = excluded.sop_instance_uid, dicom = excluded.dicom, processed_at = clock_timestamp()"""


def process(record, s3, db):
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    sha256 = hashlib.sha256(body).hexdigest()
    ds = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
    header = ds.to_json_dict()
    db.execute(UPSERT, (bucket, key, sha256, ds.get("StudyInstanceUID"), ds.get("SOPInstanceUID"), Jsonb(header)))


def consume(queue_url, sqs, s3, db, stop):
    while not stop.is_set():
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            try:
                for record in json.loads(message["Body"]).get("Records", []):
                    if record["eventName"].startswith("ObjectCreated:"):
                        process(record, s3, db)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            except Exception:
                traceback.print_exc()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    with psycopg.connect(args.database_url, autocommit=True) as db:
        db.execute(SCHEMA)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Every client and connection exists before the first receive: once a thread has taken the
    # queue's s3:TestEvent, start-up is over.
    clients = []
    for _ in range(args.threads):
        session = boto3.session.Session()
        clients.append((session.client("sqs"), session.client("s3"), psycopg.connect(args.database_url, autocommit=True)))
    threads = [threading.Thread(target=consume, args=(args.queue_url, *c, stop)) for c in clients]
    for thread in threads:
        thread.start()
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join()
    for _, _, db in clients:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
