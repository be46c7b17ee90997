-- Addresses moved aside by the up migration stay as they are.
DROP INDEX contacts_client_email_lower_key;
DROP INDEX users_email_lower_key;
