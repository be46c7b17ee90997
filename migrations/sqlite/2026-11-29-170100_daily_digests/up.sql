-- Staff preferences (no row: the defaults) and the daily digests sent, one per member per local day.
CREATE TABLE staff_preferences (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    daily_digest INTEGER NOT NULL CHECK (daily_digest IN (0, 1)),
    updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE digests_sent (
    user_id INTEGER NOT NULL REFERENCES users (id),
    digest_date TEXT NOT NULL,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    sent_at TEXT NOT NULL,
    PRIMARY KEY (user_id, digest_date)
) STRICT;
