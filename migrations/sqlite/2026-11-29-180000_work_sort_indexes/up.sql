-- Indexes for the work lists' orderBy: STATUS seeks on (status, id) within a firm; CLIENT
-- walks the clients by name (clients_firm_name_id_idx) and each client's rows by id.
CREATE INDEX tasks_firm_status_id_idx ON tasks (firm_id, status, id);
CREATE INDEX information_requests_firm_status_id_idx ON information_requests (firm_id, status, id);
CREATE INDEX tasks_client_id_idx ON tasks (client_id, id);
CREATE INDEX information_requests_client_id_idx ON information_requests (client_id, id);
