-- The activity journal: every state change, with its actor, append-only (no UPDATE, no DELETE).
CREATE TABLE journal_entries (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    occurred_at TEXT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('STAFF', 'CONTACT', 'SYSTEM')),
    actor_user_id INTEGER REFERENCES users (id),
    actor_contact_id INTEGER REFERENCES contacts (id),
    kind TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    client_id INTEGER REFERENCES clients (id),
    mission_id INTEGER REFERENCES missions (id),
    before_status TEXT,
    after_status TEXT,
    detail TEXT
) STRICT;
CREATE INDEX journal_entries_firm_idx ON journal_entries (firm_id, id);
CREATE INDEX journal_entries_object_idx ON journal_entries (firm_id, object_type, object_id, id);
CREATE INDEX journal_entries_client_idx ON journal_entries (firm_id, client_id, id);
CREATE INDEX journal_entries_mission_idx ON journal_entries (firm_id, mission_id, id);
CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
