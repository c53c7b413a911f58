-- Telling the upload path (issue 16): every settled outcome is announced from the transaction
-- that records it, and DICOM instances are grouped into studies and series by the same write.
--
-- Both are triggers on `documents` rather than extra clauses in the worker's statement, so that
-- every writer is covered the same way: the worker's finalize/reject/delete statement,
-- `docworker reconcile --fix`, and an operator's hand-written UPDATE. A trigger runs inside the
-- writing statement's transaction: the NOTIFY is delivered at COMMIT and dropped on ROLLBACK, and
-- the outbox row commits or vanishes with the document row. The statement stays one round trip.

-- The payload carries the stable label of a rejection (`too_large`, `declared_mismatch`, …, the
-- same labels as the `docworker_rejections_total{reason}` metric), never the sentence in
-- `rejection_reason`, which may name a declared type or an archive entry chosen by the uploader.
-- Rows rejected before this migration have no label.
ALTER TABLE documents ADD COLUMN rejection_label text;
ALTER TABLE documents ADD CONSTRAINT documents_label_only_when_rejected
    CHECK (rejection_label IS NULL OR status = 'rejected');

-- The transactional outbox: one row per outcome (kind `document`) and per completed study (kind
-- `study`), with the same payload as the NOTIFY. The worker publishes them to EventBridge or SNS
-- when one is configured and deletes each row once the publish succeeded (at least once: a crash
-- between the two publishes it again). `next_attempt_at` is the lease and the backoff: a claimed
-- row is pushed into the future, so a worker that dies mid-publish leaves it for another.
CREATE TABLE outbox (
    id               bigserial   PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('document', 'study')),
    payload          jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- The class of the last failure (an SDK error code), never a payload value.
    last_error       text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

-- A document's outcome: the payload, queued in the outbox and sent on `docworker_documents`.
CREATE FUNCTION docworker_document_settled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload jsonb := jsonb_build_object(
        'id', NEW.id, 'bucket', NEW.bucket, 'key', NEW.file_key,
        'status', NEW.status, 'reason', NEW.rejection_label);
BEGIN
    INSERT INTO outbox (kind, payload) VALUES ('document', payload);
    PERFORM pg_notify('docworker_documents', payload::text);
    RETURN NULL;
END
$$;

-- Settled is every status but `pending`. An update announces only a new outcome: another status,
-- version, ETag, content, rejection or S3 event (sequencer). Processing the same event again
-- (a redelivery, a replay of the version the row already holds) rewrites the row and says
-- nothing, so a listener hears of each outcome once in the common case and at least once always.
CREATE TRIGGER documents_settled_insert AFTER INSERT ON documents
    FOR EACH ROW WHEN (NEW.status <> 'pending')
    EXECUTE FUNCTION docworker_document_settled();
CREATE TRIGGER documents_settled_update AFTER UPDATE ON documents
    FOR EACH ROW WHEN (NEW.status <> 'pending' AND
        (OLD.status, OLD.version_id, OLD.etag, OLD.sha256, OLD.rejection_label, OLD.sequencer)
        IS DISTINCT FROM
        (NEW.status, NEW.version_id, NEW.etag, NEW.sha256, NEW.rejection_label, NEW.sequencer))
    EXECUTE FUNCTION docworker_document_settled();

-- Studies and series, kept by the write: an instance is a finalized row with a Study Instance
-- UID. Counts move by deltas under the series' and the study's row locks (taken in that order by
-- every writer), so concurrent workers finalizing instances of one study count each once, and a
-- case page reads one indexed row per study instead of aggregating its instances.
CREATE TABLE studies (
    -- What notifications name: the id is not a DICOM value, the UID is.
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    study_instance_uid  text        NOT NULL UNIQUE,
    case_id             text,
    patient_id          text,
    study_date          date,
    -- Every modality an instance of the study has carried.
    modalities          text[]      NOT NULL DEFAULT '{}',
    series_count        integer     NOT NULL DEFAULT 0 CHECK (series_count >= 0),
    instance_count      integer     NOT NULL DEFAULT 0 CHECK (instance_count >= 0),
    -- When S3 stored the first and the latest instance (the rows' `uploaded_at`).
    first_arrival_at    timestamptz,
    last_arrival_at     timestamptz,
    -- When the latest new instance was recorded: the quiet period counts from here.
    changed_at          timestamptz NOT NULL DEFAULT now(),
    -- When the study was reported complete; a new instance sets it back to NULL.
    completed_at        timestamptz
);
CREATE INDEX studies_case ON studies (case_id, study_date DESC) WHERE case_id IS NOT NULL;
CREATE INDEX studies_patient ON studies (patient_id, study_date DESC) WHERE patient_id IS NOT NULL;
CREATE INDEX studies_awaiting_completion ON studies (changed_at) WHERE completed_at IS NULL;

CREATE TABLE series (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    study_instance_uid   text        NOT NULL,
    -- NULL groups the instances that carry no Series Instance UID.
    series_instance_uid  text,
    modality             text,
    instance_count       integer     NOT NULL DEFAULT 0 CHECK (instance_count >= 0),
    first_arrival_at     timestamptz,
    last_arrival_at      timestamptz,
    CONSTRAINT series_study_series UNIQUE NULLS NOT DISTINCT (study_instance_uid, series_instance_uid)
);

-- A series' instances, for the case page's third level (and the trigger's own lookups).
CREATE INDEX documents_series ON documents (study_instance_uid, series_instance_uid)
    WHERE status = 'finalized' AND study_instance_uid IS NOT NULL;

-- Moves one instance into (`delta` = 1) or out of (-1) its series and study.
CREATE FUNCTION docworker_count_instance(instance documents, delta integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    arrival timestamptz := COALESCE(instance.uploaded_at, now());
    series_now integer;
    series_delta integer := 0;
BEGIN
    INSERT INTO series AS s (study_instance_uid, series_instance_uid, modality, instance_count,
                             first_arrival_at, last_arrival_at)
    VALUES (instance.study_instance_uid, instance.series_instance_uid, instance.modality, greatest(delta, 0),
            arrival, arrival)
    ON CONFLICT ON CONSTRAINT series_study_series DO UPDATE SET
        instance_count   = s.instance_count + delta,
        modality         = COALESCE(s.modality, EXCLUDED.modality),
        first_arrival_at = CASE WHEN delta > 0 THEN least(s.first_arrival_at, arrival)
                                ELSE s.first_arrival_at END,
        last_arrival_at  = CASE WHEN delta > 0 THEN greatest(s.last_arrival_at, arrival)
                                ELSE s.last_arrival_at END
    RETURNING instance_count INTO series_now;
    IF delta > 0 AND series_now = 1 THEN
        series_delta := 1;
    ELSIF delta < 0 AND series_now = 0 THEN
        series_delta := -1;
    END IF;

    INSERT INTO studies AS st (study_instance_uid, case_id, patient_id, study_date, modalities,
                               series_count, instance_count, first_arrival_at, last_arrival_at)
    VALUES (instance.study_instance_uid, instance.case_id, instance.patient_id, instance.study_date,
            CASE WHEN instance.modality IS NULL THEN '{}' ELSE ARRAY[instance.modality] END,
            greatest(series_delta, 0), greatest(delta, 0), arrival, arrival)
    ON CONFLICT (study_instance_uid) DO UPDATE SET
        series_count     = st.series_count + series_delta,
        instance_count   = st.instance_count + delta,
        case_id          = COALESCE(st.case_id, EXCLUDED.case_id),
        patient_id       = COALESCE(st.patient_id, EXCLUDED.patient_id),
        study_date       = COALESCE(st.study_date, EXCLUDED.study_date),
        modalities       = CASE WHEN instance.modality IS NULL OR instance.modality = ANY (st.modalities)
                                THEN st.modalities
                                ELSE st.modalities || instance.modality END,
        first_arrival_at = CASE WHEN delta > 0 THEN least(st.first_arrival_at, arrival)
                                ELSE st.first_arrival_at END,
        last_arrival_at  = CASE WHEN delta > 0 THEN greatest(st.last_arrival_at, arrival)
                                ELSE st.last_arrival_at END,
        changed_at       = CASE WHEN delta > 0 THEN now() ELSE st.changed_at END,
        completed_at     = CASE WHEN delta > 0 THEN NULL ELSE st.completed_at END;
END
$$;

CREATE FUNCTION docworker_track_instances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_counted boolean := TG_OP = 'UPDATE' AND OLD.status = 'finalized'
                           AND OLD.study_instance_uid IS NOT NULL;
    is_counted boolean := NEW.status = 'finalized' AND NEW.study_instance_uid IS NOT NULL;
BEGIN
    IF was_counted AND is_counted AND OLD.study_instance_uid = NEW.study_instance_uid
       AND OLD.series_instance_uid IS NOT DISTINCT FROM NEW.series_instance_uid THEN
        -- The same instance written again (a replay, a redelivery): nothing moves.
        RETURN NULL;
    END IF;
    IF was_counted THEN
        PERFORM docworker_count_instance(OLD, -1);
    END IF;
    IF is_counted THEN
        PERFORM docworker_count_instance(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER documents_track_instances
    AFTER INSERT OR UPDATE OF status, study_instance_uid, series_instance_uid ON documents
    FOR EACH ROW EXECUTE FUNCTION docworker_track_instances();

-- A study reported complete (`completed_at` set by the worker after the quiet period) is announced
-- like a document outcome, on the sibling channel `docworker_studies`, by its id and its counts.
CREATE FUNCTION docworker_study_completed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload jsonb := jsonb_build_object(
        'study_id', NEW.id, 'status', 'complete',
        'series', NEW.series_count, 'instances', NEW.instance_count);
BEGIN
    INSERT INTO outbox (kind, payload) VALUES ('study', payload);
    PERFORM pg_notify('docworker_studies', payload::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER studies_completed AFTER UPDATE OF completed_at ON studies
    FOR EACH ROW WHEN (OLD.completed_at IS NULL AND NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION docworker_study_completed();

-- The instances already recorded. Studies last touched more than an hour ago count as reported
-- (announcing every old study at once would only be noise); recent ones wait for their quiet
-- period like new ones.
INSERT INTO series (study_instance_uid, series_instance_uid, modality, instance_count,
                    first_arrival_at, last_arrival_at)
SELECT study_instance_uid, series_instance_uid, min(modality), count(*),
       min(COALESCE(uploaded_at, updated_at)), max(COALESCE(uploaded_at, updated_at))
FROM documents
WHERE status = 'finalized' AND study_instance_uid IS NOT NULL
GROUP BY study_instance_uid, series_instance_uid;

INSERT INTO studies (study_instance_uid, case_id, patient_id, study_date, modalities,
                     series_count, instance_count, first_arrival_at, last_arrival_at,
                     changed_at, completed_at)
SELECT study_instance_uid, min(case_id), min(patient_id), min(study_date),
       COALESCE(array_agg(DISTINCT modality) FILTER (WHERE modality IS NOT NULL), '{}'),
       count(DISTINCT COALESCE(series_instance_uid, '')), count(*),
       min(COALESCE(uploaded_at, updated_at)), max(COALESCE(uploaded_at, updated_at)),
       max(updated_at),
       CASE WHEN max(updated_at) < now() - interval '1 hour' THEN now() END
FROM documents
WHERE status = 'finalized' AND study_instance_uid IS NOT NULL
GROUP BY study_instance_uid;

-- The runtime role's share: the triggers run as the writer, so whoever records documents
-- writes the outbox and the groupings; the worker drains the outbox (DELETE once published: it
-- is a queue, not a record) and marks studies complete. On a database without the role this
-- grants nothing.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'docworker_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO docworker_app;
        GRANT USAGE ON SEQUENCE outbox_id_seq TO docworker_app;
        GRANT SELECT, INSERT, UPDATE ON studies, series TO docworker_app;
    END IF;
END
$$;
