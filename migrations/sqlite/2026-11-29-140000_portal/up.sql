-- The client portal: sessions started from an emailed link (stored hashed, expiring,
-- revocable), and when a contact unsubscribed from emails (the firm sees it).
CREATE TABLE portal_sessions (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
CREATE INDEX portal_sessions_contact_idx ON portal_sessions (contact_id);
ALTER TABLE contacts ADD COLUMN unsubscribed_at TEXT;
