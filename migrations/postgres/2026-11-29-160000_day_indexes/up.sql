-- Indexes matching the firm's-day filters: created today, by service (through the item), by
-- assignee (and the workload's count per assignee), and the history's filter by kind.
CREATE INDEX tasks_firm_created_on_idx ON tasks (firm_id, created_on);
CREATE INDEX information_requests_firm_created_on_idx ON information_requests (firm_id, created_on);
CREATE INDEX tasks_firm_item_due_idx ON tasks (firm_id, service_item_id, due_date, id);
CREATE INDEX information_requests_firm_item_due_idx ON information_requests (firm_id, service_item_id, due_date, id);
CREATE INDEX tasks_firm_assignee_due_idx ON tasks (firm_id, assignee_id, due_date, id);
CREATE INDEX journal_entries_firm_kind_idx ON journal_entries (firm_id, kind, id);
