-- One row per stored object (bucket, key): the upload path may create it as `pending`, the worker
-- finalizes or rejects it, and a removal event marks it `deleted`.
CREATE TABLE documents (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket                 text        NOT NULL,
    file_key               text        NOT NULL,
    title                  text,
    description            text,
    category               text        NOT NULL DEFAULT 'other'
        CHECK (category IN ('medical', 'images', 'reports', 'admin', 'prescriptions', 'referrals', 'other')),
    original_filename      text,
    uploaded_by            text,
    case_id                text,
    declared_content_type  text,
    content_type           text,
    file_size              bigint      CHECK (file_size >= 0),
    sha256                 text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    etag                   text,
    version_id             text,
    sequencer              text,
    status                 text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'finalized', 'rejected', 'deleted')),
    rejection_reason       text,
    study_instance_uid     text,
    series_instance_uid    text,
    sop_instance_uid       text,
    sop_class_uid          text,
    modality               text,
    patient_id             text,
    study_date             date,
    transfer_syntax_uid    text,
    dicom                  jsonb,
    -- Which check vouched for the transfer: an S3 checksum algorithm, 'md5-etag' or 'length-only'.
    integrity              text,
    uploaded_at            timestamptz,
    processed_at           timestamptz,
    processor_version      text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_bucket_key UNIQUE (bucket, file_key),
    CONSTRAINT documents_rejection_has_reason CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);

CREATE INDEX documents_status ON documents (status);
CREATE INDEX documents_study ON documents (study_instance_uid) WHERE study_instance_uid IS NOT NULL;
CREATE INDEX documents_case ON documents (case_id) WHERE case_id IS NOT NULL;

-- S3's ordering rule for two sequencers of the same key: right-pad the shorter with zeros, then
-- compare as strings. True when `a` is not newer than `b`.
CREATE FUNCTION docworker_sequencer_le(a text, b text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT rpad(upper(a), greatest(length(a), length(b)), '0') COLLATE "C"
        <= rpad(upper(b), greatest(length(a), length(b)), '0') COLLATE "C"
$$;
