-- Rappel's whole logical schema, SQLite dialect (STRICT tables; dates and timestamps as ISO text, booleans as 0/1).
-- The PostgreSQL twin lives in migrations/postgres/;
-- both must describe the same tables, columns, keys and checks.

CREATE TABLE firms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone TEXT NOT NULL DEFAULT 'Europe/Paris',
    locale TEXT NOT NULL DEFAULT 'fr' CHECK (locale IN ('fr', 'en')),
    sending_hour INTEGER CHECK (sending_hour BETWEEN 0 AND 23),
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('ADMIN', 'MEMBER')),
    archived_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX users_firm_idx ON users (firm_id);

CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    reference TEXT,
    archived_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX clients_firm_idx ON clients (firm_id, name);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    language TEXT CHECK (language IN ('fr', 'en')),
    notifications_enabled INTEGER NOT NULL DEFAULT 1 CHECK (notifications_enabled IN (0, 1)),
    archived_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (client_id, email)
) STRICT;
CREATE INDEX contacts_firm_idx ON contacts (firm_id);

CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    token_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('STAFF_SESSION', 'CONTACT', 'SIGN_IN_LINK', 'UNSUBSCRIBE')),
    user_id INTEGER REFERENCES users (id),
    contact_id INTEGER REFERENCES contacts (id),
    expires_at TEXT,
    revoked_at TEXT,
    used_at TEXT,
    created_at TEXT NOT NULL,
    CHECK ((kind = 'STAFF_SESSION') = (user_id IS NOT NULL)),
    CHECK ((kind = 'STAFF_SESSION') = (contact_id IS NULL))
) STRICT;
CREATE INDEX access_tokens_user_idx ON access_tokens (user_id);
CREATE INDEX access_tokens_contact_idx ON access_tokens (contact_id);

CREATE TABLE categories (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    archived_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (firm_id, name)
) STRICT;

CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    category_id INTEGER REFERENCES categories (id),
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    deliverable_type TEXT NOT NULL CHECK (deliverable_type IN ('DOCUMENTS', 'FIGURES', 'DECLARATION', 'OTHER')),
    lead_days INTEGER NOT NULL CHECK (lead_days BETWEEN 0 AND 366),
    reminder_days_before INTEGER CHECK (reminder_days_before BETWEEN 0 AND 366),
    reminder_on_due_date INTEGER CHECK (reminder_on_due_date IN (0, 1)),
    reminder_every_days INTEGER CHECK (reminder_every_days BETWEEN 1 AND 366),
    reminder_max_count INTEGER CHECK (reminder_max_count BETWEEN 0 AND 100),
    archived_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX services_firm_idx ON services (firm_id);
CREATE INDEX services_category_idx ON services (category_id);

CREATE TABLE service_items (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    service_id INTEGER NOT NULL REFERENCES services (id),
    kind TEXT NOT NULL CHECK (kind IN ('TASK', 'INFORMATION_REQUEST')),
    text TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    position INTEGER NOT NULL CHECK (position >= 0),
    archived_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX service_items_service_idx ON service_items (service_id, position);

CREATE TABLE missions (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    start_date TEXT NOT NULL,
    end_date TEXT,
    status TEXT NOT NULL CHECK (status IN ('DRAFT', 'SIGNED', 'ENDED', 'CANCELLED')),
    signed_at TEXT,
    ended_at TEXT,
    cancelled_at TEXT,
    created_at TEXT NOT NULL,
    CHECK (end_date IS NULL OR end_date >= start_date)
) STRICT;
CREATE INDEX missions_firm_status_idx ON missions (firm_id, status);
CREATE INDEX missions_client_idx ON missions (client_id);

CREATE TABLE mission_lines (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    mission_id INTEGER NOT NULL REFERENCES missions (id),
    service_id INTEGER NOT NULL REFERENCES services (id),
    frequency TEXT NOT NULL CHECK (frequency IN ('NONE', 'WEEKLY', 'MONTHLY', 'BIMONTHLY', 'QUARTERLY', 'SEMIANNUAL', 'ANNUAL', 'CUSTOM')),
    first_due_date TEXT NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    rrule TEXT,
    working_day_adjustment TEXT NOT NULL DEFAULT 'NONE' CHECK (working_day_adjustment IN ('NONE', 'NEXT', 'PREVIOUS')),
    generated_through TEXT,
    created_at TEXT NOT NULL,
    CHECK (frequency = 'NONE' OR quantity = 1),
    CHECK ((frequency = 'CUSTOM') = (rrule IS NOT NULL))
) STRICT;
CREATE INDEX mission_lines_mission_idx ON mission_lines (mission_id);
CREATE INDEX mission_lines_firm_idx ON mission_lines (firm_id);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER NOT NULL REFERENCES clients (id),
    mission_id INTEGER NOT NULL REFERENCES missions (id),
    mission_line_id INTEGER NOT NULL REFERENCES mission_lines (id),
    service_item_id INTEGER NOT NULL REFERENCES service_items (id),
    copy_number INTEGER NOT NULL DEFAULT 1 CHECK (copy_number >= 1),
    due_date TEXT NOT NULL,
    created_on TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'DONE', 'CANCELLED')),
    assignee_id INTEGER REFERENCES users (id),
    completed_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (mission_line_id, service_item_id, due_date, copy_number)
) STRICT;
CREATE INDEX tasks_firm_status_due_idx ON tasks (firm_id, status, due_date);
CREATE INDEX tasks_client_idx ON tasks (client_id, due_date);
CREATE INDEX tasks_mission_idx ON tasks (mission_id);
CREATE INDEX tasks_assignee_idx ON tasks (assignee_id);

CREATE TABLE information_requests (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER NOT NULL REFERENCES clients (id),
    mission_id INTEGER NOT NULL REFERENCES missions (id),
    mission_line_id INTEGER NOT NULL REFERENCES mission_lines (id),
    service_item_id INTEGER NOT NULL REFERENCES service_items (id),
    copy_number INTEGER NOT NULL DEFAULT 1 CHECK (copy_number >= 1),
    due_date TEXT NOT NULL,
    created_on TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'ANSWERED', 'CLOSED', 'CANCELLED')),
    answered_at TEXT,
    closed_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (mission_line_id, service_item_id, due_date, copy_number)
) STRICT;
CREATE INDEX information_requests_firm_status_due_idx ON information_requests (firm_id, status, due_date);
CREATE INDEX information_requests_client_idx ON information_requests (client_id, due_date);
CREATE INDEX information_requests_mission_idx ON information_requests (mission_id);

CREATE TABLE request_answers (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    request_id INTEGER NOT NULL REFERENCES information_requests (id),
    contact_id INTEGER REFERENCES contacts (id),
    message TEXT CHECK (length(message) <= 10000),
    nothing_to_report INTEGER NOT NULL DEFAULT 0 CHECK (nothing_to_report IN (0, 1)),
    created_at TEXT NOT NULL,
    CHECK (message IS NOT NULL OR nothing_to_report = 1)
) STRICT;
CREATE INDEX request_answers_request_idx ON request_answers (request_id);

CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    client_id INTEGER REFERENCES clients (id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    disabled_reason TEXT,
    failing_since TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_firm_idx ON webhook_endpoints (firm_id);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    firm_id INTEGER NOT NULL REFERENCES firms (id),
    delivery_uid TEXT NOT NULL UNIQUE,
    dedupe_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('EMAIL', 'WEBHOOK')),
    event TEXT NOT NULL CHECK (event IN ('information_request.created', 'information_request.reminder', 'information_request.answered', 'information_request.closed', 'webhook_endpoint.disabled')),
    request_id INTEGER REFERENCES information_requests (id),
    contact_id INTEGER REFERENCES contacts (id),
    webhook_endpoint_id INTEGER REFERENCES webhook_endpoints (id) ON DELETE SET NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED', 'DEAD', 'SKIPPED')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    leased_by TEXT,
    last_error TEXT,
    delivered_at TEXT,
    created_at TEXT NOT NULL,
    CHECK (kind = 'WEBHOOK' OR webhook_endpoint_id IS NULL)
) STRICT;
CREATE INDEX deliveries_due_idx ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_firm_idx ON deliveries (firm_id, created_at);
CREATE INDEX deliveries_request_idx ON deliveries (request_id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempted_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('DELIVERED', 'TRANSIENT_FAILURE', 'PERMANENT_FAILURE')),
    response_code INTEGER,
    error TEXT
) STRICT;
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id);

CREATE TABLE scheduler_runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('GENERATION', 'REMINDERS')),
    instance TEXT NOT NULL,
    as_of TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    created_count INTEGER NOT NULL DEFAULT 0,
    error TEXT
) STRICT;
CREATE INDEX scheduler_runs_started_idx ON scheduler_runs (started_at);
