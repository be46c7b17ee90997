-- Staff preferences (no row: the defaults) and the daily digests sent, one per member per local day.
CREATE TABLE staff_preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    firm_id BIGINT NOT NULL REFERENCES firms (id),
    daily_digest BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE digests_sent (
    user_id BIGINT NOT NULL REFERENCES users (id),
    digest_date DATE NOT NULL,
    firm_id BIGINT NOT NULL REFERENCES firms (id),
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, digest_date)
);
