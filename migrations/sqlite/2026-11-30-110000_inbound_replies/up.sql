-- Reply addresses: one token per request email, naming the request and the contact (and the
-- delivery, so that a bounce finds it). Only the token's SHA-256 is stored.
CREATE TABLE reply_tokens (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    request_id INTEGER NOT NULL REFERENCES information_requests (id),
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    delivery_id INTEGER REFERENCES deliveries (id) ON DELETE SET NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;
CREATE INDEX reply_tokens_contact_idx ON reply_tokens (firm_id, contact_id);

-- Every email received at a reply address once its token is known: what became of it
-- (ANSWERED, HELD, ACCEPTED, REJECTED, AUTO_REPLY, BOUNCE, REFUSED), its authentication
-- results, and for a held one where its raw bytes are kept. message_key (the Message-ID, else
-- a hash of the bytes) makes a second delivery of the same email change nothing.
CREATE TABLE inbound_messages (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    message_key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL CHECK (source IN ('IMAP', 'SMTP')),
    request_id INTEGER NOT NULL REFERENCES information_requests (id),
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('RECEIVING', 'ANSWERED', 'HELD', 'ACCEPTED', 'REJECTED', 'AUTO_REPLY', 'BOUNCE', 'REFUSED')),
    reason TEXT,
    authentication TEXT NOT NULL,
    raw_key TEXT,
    answer_id INTEGER REFERENCES request_answers (id),
    received_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by_user_id INTEGER REFERENCES users (id)
) STRICT;
CREATE INDEX inbound_messages_firm_outcome_idx ON inbound_messages (firm_id, outcome, id);
