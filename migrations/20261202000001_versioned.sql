-- Replays are recorded as such. A replayed write keeps the row's original `uploaded_at` (when S3
-- stored the object, which `replay --since` selects on); the time of the replay and the fact
-- that it was one stay here, in the audit trail (`at`, `replayed`).
ALTER TABLE document_events ADD COLUMN replayed boolean NOT NULL DEFAULT false;
