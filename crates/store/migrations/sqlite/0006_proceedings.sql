-- Concordat store, SQLite, migration 0006: what the partnership's bodies and officers do.
-- Meetings, disputes, complaints, risks and notice are kept as the records the domain builds
-- (JSON), with the columns lists and calendars sort and filter by; decisions have their own
-- table because budget revisions cite them and draw down what they authorised.

CREATE TABLE proceeding (
    partnership_key TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('meeting', 'dispute', 'complaint', 'risk', 'notice')),
    reference       TEXT NOT NULL,
    -- What lists show and search: e.g. 'held', 'open', 'resolved'; the meeting's body.
    status          TEXT NOT NULL,
    title           TEXT NOT NULL,
    -- The date it is filed under (held on, raised on, received on, review due, served on).
    dated           TEXT NOT NULL,
    record_json     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (partnership_key, kind, reference)
);

-- A paper tabled at a meeting, stored whole; never changed once added.
CREATE TABLE meeting_paper (
    partnership_key TEXT NOT NULL,
    meeting         TEXT NOT NULL,
    paper_id        INTEGER NOT NULL,
    title           TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    content         BLOB NOT NULL,
    added_at        TEXT NOT NULL,
    added_by        TEXT NOT NULL,
    PRIMARY KEY (partnership_key, meeting, paper_id)
);

CREATE TABLE decision (
    partnership_key     TEXT NOT NULL,
    reference           TEXT NOT NULL,
    decided_on          TEXT NOT NULL,
    -- 'reserved', 'joint' or 'delegated'.
    level               TEXT NOT NULL,
    decision_type       TEXT NOT NULL,
    title               TEXT NOT NULL,
    body                TEXT NULL,
    meeting             TEXT NULL,
    fund                TEXT NULL,
    -- What it authorises; budget revisions citing it draw it down, increases and decreases
    -- separately (a virement of X moves X up one line and X down another).
    amount_pence        INTEGER NULL,
    used_increase_pence INTEGER NOT NULL DEFAULT 0,
    used_decrease_pence INTEGER NOT NULL DEFAULT 0,
    -- 1: shown on the public decisions page.
    published           INTEGER NOT NULL,
    record_json         TEXT NOT NULL,
    recorded_at         TEXT NOT NULL,
    recorded_by         TEXT NOT NULL,
    PRIMARY KEY (partnership_key, reference)
);

-- A version that varies contributions cites the contribution-variation decision behind it.
ALTER TABLE agreement_version ADD COLUMN authority TEXT NULL;
