DROP TABLE digests_sent;
DROP TABLE staff_preferences;
