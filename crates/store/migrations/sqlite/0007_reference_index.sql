-- Concordat store, SQLite, migration 0007: each import's reference hashes, sorted, so a new
-- file's references are checked against the partnership's in one streaming merge, in bounded
-- memory, rather than through a set of every reference held in memory.
-- An import that has batches but no rows here (imported before this migration) gets them from
-- its batches' reference_hashes the next time a file is imported into its partnership.

CREATE TABLE ledger_reference_index (
    partnership_key TEXT NOT NULL,
    import_id       INTEGER NOT NULL,
    -- From 1; the chunks of an import in order hold its hashes in ascending order.
    chunk_no        INTEGER NOT NULL,
    -- The FNV-1a hashes of the references (as in ledger_batch.reference_hashes), sorted as
    -- unsigned 64-bit numbers, 8 bytes each, little-endian.
    hashes          BLOB NOT NULL,
    PRIMARY KEY (partnership_key, import_id, chunk_no)
);
