-- `docworker reconcile` walks a bucket's rows in the order S3 lists keys: byte-wise, which is
-- `COLLATE "C"`. The unique (bucket, file_key) index is in the database's collation (a locale's,
-- in most installations), which orders keys otherwise (case, punctuation, accents): a keyset
-- walk on it would need a sort of the whole bucket. This index serves the walk page by page.
CREATE INDEX documents_bucket_key_c ON documents (bucket, file_key COLLATE "C");

-- The worker counts pending rows older than a threshold (`docworker_stale_pending_rows`) every
-- minute: the few pending rows, by age, without reading the others.
CREATE INDEX documents_pending_created ON documents (created_at) WHERE status = 'pending';
