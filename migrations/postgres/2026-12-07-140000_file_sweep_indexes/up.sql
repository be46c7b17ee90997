-- The file sweep asks which stored objects a row still names, in batches of keys: these make
-- each batch a handful of index lookups instead of a scan of every file and message.
CREATE INDEX answer_files_storage_key_idx ON answer_files (storage_key);
CREATE INDEX inbound_messages_raw_key_idx ON inbound_messages (raw_key) WHERE raw_key IS NOT NULL;
