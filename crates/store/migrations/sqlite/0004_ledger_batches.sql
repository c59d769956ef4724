-- Concordat store, SQLite, migration 0004: imported postings kept a batch at a time, one
-- columnar blob per batch (see src/batch.rs for the layout), instead of a row per posting.
-- Corrections stay rows of ledger_posting; postings imported before this migration stay
-- there too, and every read takes both.

CREATE TABLE ledger_batch (
    partnership_key  TEXT NOT NULL,
    import_id        INTEGER NOT NULL,
    batch_no         INTEGER NOT NULL,
    rows             INTEGER NOT NULL,
    -- The financial years the batch's postings fall in, so reads of one year skip the rest.
    first_year_start INTEGER NOT NULL,
    last_year_start  INTEGER NOT NULL,
    -- Postings on the SUSPENSE service line, so closing a period decodes only such batches.
    suspense_rows    INTEGER NOT NULL,
    postings         BLOB NOT NULL,
    -- The FNV-1a hash of each posting's reference, in order (8 bytes each): checking a new
    -- file's references, or finding one posting, reads these rather than every posting.
    reference_hashes BLOB NOT NULL,
    PRIMARY KEY (partnership_key, import_id, batch_no)
);
