-- Each event belongs to the slot's tenant of its time (`owner`: a customer reads
-- only their own), and says which token caused it (`actor`: shown to staff only).
ALTER TABLE events ADD COLUMN owner TEXT;
ALTER TABLE events ADD COLUMN actor TEXT;
CREATE INDEX events_owner ON events (owner, id);
