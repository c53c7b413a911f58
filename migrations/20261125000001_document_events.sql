-- Append-only audit trail: one row per processing attempt of one record (or of an unreadable
-- message), so every dead-lettered message has an explanation and every document a history.
CREATE TABLE document_events (
    id           bigserial   PRIMARY KEY,
    bucket       text,
    file_key     text,
    message_id   text        NOT NULL,
    attempt      integer     NOT NULL,
    outcome      text        NOT NULL,
    reason       text,
    duration_ms  bigint      NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX document_events_key ON document_events (bucket, file_key, at DESC);
CREATE INDEX document_events_message ON document_events (message_id, at DESC);

-- Append-only: the worker only inserts.
CREATE FUNCTION document_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'document_events is append-only';
END
$$;
CREATE TRIGGER document_events_append_only BEFORE UPDATE OR DELETE ON document_events
    FOR EACH ROW EXECUTE FUNCTION document_events_append_only();
