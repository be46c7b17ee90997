-- An answer may now be files alone: the check "a message or nothing to report" moves to the
-- operation (a message, nothing to report or at least one file). SQLite cannot drop a check,
-- so the table is rebuilt with the same rows and indexes.
CREATE TABLE request_answers_new (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    request_id INTEGER NOT NULL REFERENCES information_requests (id),
    contact_id INTEGER REFERENCES contacts (id),
    message TEXT CHECK (length(message) <= 10000),
    nothing_to_report INTEGER NOT NULL DEFAULT 0 CHECK (nothing_to_report IN (0, 1)),
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO request_answers_new (id, firm_id, request_id, contact_id, message, nothing_to_report, created_at)
SELECT id, firm_id, request_id, contact_id, message, nothing_to_report, created_at FROM request_answers;
DROP TABLE request_answers;
ALTER TABLE request_answers_new RENAME TO request_answers;
CREATE INDEX request_answers_request_idx ON request_answers (request_id);
CREATE INDEX request_answers_firm_request_idx ON request_answers (firm_id, request_id, id);

-- The documents deposited with answers: metadata here, bytes in the object store under
-- storage_key. Rows are never deleted.
CREATE TABLE answer_files (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER NOT NULL REFERENCES clients (id),
    request_id INTEGER NOT NULL REFERENCES information_requests (id),
    answer_id INTEGER NOT NULL REFERENCES request_answers (id),
    uploaded_by_contact_id INTEGER REFERENCES contacts (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    storage_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX answer_files_firm_idx ON answer_files (firm_id, id);
CREATE INDEX answer_files_answer_idx ON answer_files (answer_id, id);
CREATE INDEX answer_files_request_idx ON answer_files (firm_id, request_id, id);
CREATE INDEX answer_files_client_idx ON answer_files (firm_id, client_id, id);
