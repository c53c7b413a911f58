"""Waiting for docworker's verdict from the web app: a listener on `docworker_documents`.

What the Django side runs (a management command, or a thread of the process that serves the
upload page), with psycopg 3 (`pip install "psycopg[binary]"`):

    python docs/listener.py postgres://app@db/docworker

NOTIFY reaches the sessions listening when the outcome commits, and no others: a listener that
was disconnected missed what happened meanwhile. So it LISTENs first and then catches up from
the table (what it is waiting for is still `pending` there, or already settled), and does that
again after every reconnect. Outcomes may be heard twice (at least once, and the catch-up
overlaps the channel): handle them by the document's id, idempotently.

The payload is small and holds no patient data: {"id", "bucket", "key", "status", "reason"},
`status` one of finalized, rejected, deleted; `reason` the rejection's label (`too_large`,
`declared_mismatch`, …) or null. Read the row for anything else. Completed studies come on
`docworker_studies` as {"study_id", "status": "complete", "series", "instances"}.
"""

import json
import sys
import time

import psycopg

CHANNELS = ("docworker_documents", "docworker_studies")


def settled(payload: dict) -> None:
    """Tell the page waiting on this document (a websocket push, a cache key, a task)."""
    print(payload["status"], payload["bucket"], payload["key"], payload["reason"] or "")


def catch_up(conn: psycopg.Connection, since) -> None:
    """The outcomes recorded while no one listened (from `since`, an earlier `now()`)."""
    rows = conn.execute(
        """SELECT id::text, bucket, file_key, status, rejection_label FROM documents
           WHERE status <> 'pending' AND updated_at >= %s ORDER BY updated_at""",
        (since,),
    )
    for id_, bucket, key, status, reason in rows:
        settled({"id": id_, "bucket": bucket, "key": key, "status": status, "reason": reason})


def listen(url: str) -> None:
    since = None
    while True:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                for channel in CHANNELS:
                    conn.execute(f"LISTEN {channel}")
                now = conn.execute("SELECT now()").fetchone()[0]
                if since is not None:
                    catch_up(conn, since)
                since = now
                for notify in conn.notifies():
                    payload = json.loads(notify.payload)
                    if notify.channel == "docworker_documents":
                        settled(payload)
                    else:
                        print("study complete", payload["study_id"], payload["instances"])
        except psycopg.OperationalError as error:
            print(f"listener disconnected ({error.sqlstate or 'no SQLSTATE'}); reconnecting",
                  file=sys.stderr)
            time.sleep(1)


if __name__ == "__main__":
    listen(sys.argv[1])
