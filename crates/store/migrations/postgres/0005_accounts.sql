-- Concordat store, PostgreSQL, migration 0005: who may use the system. Organisations and the partners
-- they are in each partnership, local user accounts, roles granted per partnership, failed
-- sign-ins (for throttling), sessions of the web application, and bearer tokens for
-- machine clients. Tokens and session identifiers are kept only as SHA-256 hashes.

CREATE TABLE organisation (
    org_key    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The organisation is this partner of this partnership.
CREATE TABLE organisation_party (
    partnership_key TEXT NOT NULL,
    partner_id      TEXT NOT NULL,
    org_key         TEXT NOT NULL REFERENCES organisation (org_key),
    PRIMARY KEY (partnership_key, partner_id)
);

CREATE INDEX organisation_party_by_org ON organisation_party (org_key);

CREATE TABLE app_user (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    org_key       TEXT NOT NULL REFERENCES organisation (org_key),
    -- An argon2id PHC string.
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE role_grant (
    partnership_key TEXT NOT NULL,
    username        TEXT NOT NULL REFERENCES app_user (username),
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'finance_officer', 'pool_manager',
                        'board_secretary', 'board_member', 'administrator', 'auditor')),
    granted_at      TEXT NOT NULL,
    granted_by      TEXT NOT NULL,
    -- Set when the user's organisation is not party to the partnership: why they may see it.
    outside_reason  TEXT NULL,
    PRIMARY KEY (partnership_key, username, role)
);

CREATE INDEX role_grant_by_user ON role_grant (username);

CREATE TABLE sign_in_failure (
    partnership_key TEXT NOT NULL DEFAULT '_accounts',
    username        TEXT NOT NULL,
    failed_at       TEXT NOT NULL
);

CREATE INDEX sign_in_failure_by_user ON sign_in_failure (username, failed_at);

CREATE TABLE web_session (
    partnership_key TEXT NOT NULL DEFAULT '_accounts',
    token_hash      TEXT PRIMARY KEY,
    username        TEXT NOT NULL REFERENCES app_user (username),
    csrf_token      TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    ended_at        TEXT NULL
);

CREATE TABLE api_token (
    partnership_key TEXT NOT NULL,
    -- Shown to people (in lists, the audit log); the secret itself is never stored.
    token_id        TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'finance_officer', 'pool_manager',
                        'board_secretary', 'board_member', 'administrator', 'auditor')),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    revoked_at      TEXT NULL,
    revoked_by      TEXT NULL
);
