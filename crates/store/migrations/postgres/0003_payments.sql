-- Concordat store, PostgreSQL, migration 0003: payments of contributions and funding transfers, so
-- statements can say what has been paid against what has fallen due.

CREATE TABLE payment (
    partnership_key TEXT NOT NULL,
    -- The remittance or payment reference; unique in the partnership.
    reference       TEXT NOT NULL,
    -- 'contribution' (item = the fund id) or 'transfer' (item = the transfer id).
    kind            TEXT NOT NULL CHECK (kind IN ('contribution', 'transfer')),
    item            TEXT NOT NULL,
    -- Who paid: the contributing partner, or the transfer's payer.
    partner         TEXT NOT NULL,
    year_start      BIGINT NOT NULL,
    paid_on         TEXT NOT NULL,
    amount_pence    BIGINT NOT NULL,
    recorded_at     TEXT NOT NULL,
    recorded_by     TEXT NOT NULL,
    -- A payment recorded in error is reversed, never deleted: who, when and why stay.
    reversed_at     TEXT NULL,
    reversed_by     TEXT NULL,
    reversal_reason TEXT NULL,
    PRIMARY KEY (partnership_key, reference)
);

CREATE INDEX payment_by_year ON payment (partnership_key, year_start);
