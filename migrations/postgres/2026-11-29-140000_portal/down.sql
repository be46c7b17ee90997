ALTER TABLE contacts DROP COLUMN unsubscribed_at;
DROP TABLE portal_sessions;
