DROP TABLE inbound_messages;
DROP TABLE reply_tokens;
