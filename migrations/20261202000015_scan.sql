-- The malware scan's verdict (the gate, README "The gate"): what clamd said about the bytes the
-- row describes. NULL on rows written before the gate, on pending rows, and on rejections decided
-- before any byte was read (too large, empty); a deletion leaves the column as it was.
-- An infected row is `rejected`, its reason naming the signature; `not configured` when the worker
-- ran without DOCWORKER_CLAMD_ADDR. The column inherits the table's grants (docworker_app).
ALTER TABLE documents ADD COLUMN scan text
    CONSTRAINT documents_scan_known CHECK (scan IN (
        'not configured', 'clean', 'infected',
        'not scanned: unavailable', 'not scanned: too large', 'not scanned: timeout'));
