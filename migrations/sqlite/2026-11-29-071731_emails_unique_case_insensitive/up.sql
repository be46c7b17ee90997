-- Emails are unique whatever their case: one staff account per address, and one contact per
-- address within a client. Rows that already collide (the same address in another case) keep
-- the oldest row's address; each newer one is moved to a reserved, undeliverable address
-- (`...duplicate-<id>.invalid`, RFC 2606) so an admin can see and fix it.
UPDATE users SET email = email || '.duplicate-' || id || '.invalid'
WHERE EXISTS (
    SELECT 1 FROM users AS older
    WHERE lower(older.email) = lower(users.email) AND older.id < users.id
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

UPDATE contacts SET email = email || '.duplicate-' || id || '.invalid'
WHERE EXISTS (
    SELECT 1 FROM contacts AS older
    WHERE older.client_id = contacts.client_id
      AND lower(older.email) = lower(contacts.email)
      AND older.id < contacts.id
);
CREATE UNIQUE INDEX contacts_client_email_lower_key ON contacts (client_id, lower(email));
