-- Secret iCalendar feed URLs: one live feed per staff member or contact, stored hashed.
CREATE TABLE calendar_feeds (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    user_id INTEGER REFERENCES users (id),
    contact_id INTEGER REFERENCES contacts (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((user_id IS NULL) <> (contact_id IS NULL))
) STRICT;
CREATE INDEX calendar_feeds_user_idx ON calendar_feeds (user_id) WHERE revoked_at IS NULL;
CREATE INDEX calendar_feeds_contact_idx ON calendar_feeds (contact_id) WHERE revoked_at IS NULL;
