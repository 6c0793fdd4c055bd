-- ANAME names: the target a name follows (NULL for plain records) and what
-- pirack last made of it (JSON); the records column holds the addresses written.
ALTER TABLE dns_names ADD COLUMN target TEXT;
ALTER TABLE dns_names ADD COLUMN aname TEXT;
