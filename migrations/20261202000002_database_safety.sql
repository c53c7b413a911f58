-- The audit trail refuses TRUNCATE as it refuses UPDATE and DELETE: a row trigger does not fire
-- for TRUNCATE, a statement trigger does.
CREATE TRIGGER document_events_no_truncate BEFORE TRUNCATE ON document_events
    FOR EACH STATEMENT EXECUTE FUNCTION document_events_append_only();

-- The runtime role of a two-role set-up (docs/deploy.md): docworker_owner owns the schema and runs
-- these migrations; docworker_app (or any role granted it) runs the worker with --no-migrate and
-- may only read, insert and update documents, and read and append to the audit trail: no
-- DELETE, no TRUNCATE, no DDL. On a database without that role (a single-role set-up, a test
-- database) this grants nothing, and the migration still applies.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docworker_app') THEN
        GRANT SELECT, INSERT, UPDATE ON documents TO docworker_app;
        GRANT SELECT, INSERT ON document_events TO docworker_app;
        GRANT USAGE ON SEQUENCE document_events_id_seq TO docworker_app;
    END IF;
END
$$;
