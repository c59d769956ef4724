-- Concordat store, PostgreSQL, migration 0001: partnerships, agreement versions, partners and
-- the audit chain. Forward-only: a later change is a new numbered file, never an edit to this one.
-- Every table carries partnership_key so that a distributed PostgreSQL can shard by it.
-- Integers are BIGINT so that they read back as i64 exactly as SQLite's INTEGER does.

CREATE TABLE partnership (
    partnership_key TEXT NOT NULL PRIMARY KEY CHECK (partnership_key <> ''),
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,
    current_version BIGINT NOT NULL CHECK (current_version >= 1),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE agreement_version (
    partnership_key TEXT NOT NULL REFERENCES partnership (partnership_key),
    version         BIGINT NOT NULL CHECK (version >= 1),
    source_sha256   TEXT NOT NULL,
    source_path     TEXT NOT NULL,
    source_text     TEXT NOT NULL,
    model_json      TEXT NOT NULL,
    loaded_at       TEXT NOT NULL,
    loaded_by       TEXT NOT NULL,
    PRIMARY KEY (partnership_key, version)
);

CREATE TABLE partner (
    partnership_key TEXT NOT NULL REFERENCES partnership (partnership_key),
    partner_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    PRIMARY KEY (partnership_key, partner_id)
);

-- No foreign key to partnership: the audit trail must outlive whatever it describes.
-- before_json/after_json are TEXT, not JSONB: the hash covers the exact text written, and
-- JSONB would re-format it.
CREATE TABLE audit_record (
    partnership_key TEXT NOT NULL,
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    recorded_at     TEXT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    entity          TEXT NOT NULL,
    before_json     TEXT NULL,
    after_json      TEXT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (partnership_key, seq)
);

-- The newest record of each chain, written in the same transaction as that record. The chain
-- alone cannot show that its last records were deleted; comparing it with this head can.
CREATE TABLE audit_head (
    partnership_key TEXT NOT NULL PRIMARY KEY,
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    hash            TEXT NOT NULL
);

-- Append-only: ordinary SQL cannot change or remove an audit record. Someone who drops these
-- triggers can, and the hash chain is what then shows it.
CREATE FUNCTION audit_record_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_record is append-only: records cannot be changed or deleted';
END;
$$;

CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_record_refuse_change();

CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record
    FOR EACH ROW EXECUTE FUNCTION audit_record_refuse_change();

CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record
    FOR EACH STATEMENT EXECUTE FUNCTION audit_record_refuse_change();
