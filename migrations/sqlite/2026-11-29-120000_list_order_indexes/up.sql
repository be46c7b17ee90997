-- Indexes matching the paginated lists' filters and orders (keyset pagination seeks on them).
CREATE INDEX tasks_firm_due_idx ON tasks (firm_id, due_date, id);
CREATE INDEX information_requests_firm_due_idx ON information_requests (firm_id, due_date, id);
CREATE INDEX information_requests_client_due_idx ON information_requests (firm_id, client_id, due_date, id);
CREATE INDEX clients_firm_name_id_idx ON clients (firm_id, name, id);
CREATE INDEX services_firm_title_idx ON services (firm_id, title, id);
CREATE INDEX categories_firm_name_idx ON categories (firm_id, name, id);
CREATE INDEX missions_firm_id_idx ON missions (firm_id, id);
CREATE INDEX deliveries_firm_id_idx ON deliveries (firm_id, id);
CREATE INDEX request_answers_firm_request_idx ON request_answers (firm_id, request_id, id);
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, id);
