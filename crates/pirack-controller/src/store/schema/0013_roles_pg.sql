-- PostgreSQL only: every committed change of a slot, new event and new
-- operation is told on channel `pirack` (store::follow), so every controller's
-- mirror, event streams and operation queue follow the others' writes. The
-- payload names the writer's connection (its application_name) so that a
-- controller skips its own.
CREATE FUNCTION pirack_slot_told() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('pirack', 's ' || current_setting('application_name') || ' ' || NEW.slot_key);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE FUNCTION pirack_row_told() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('pirack', TG_ARGV[0] || ' ' || current_setting('application_name') || ' ' || NEW.id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER slots_told AFTER INSERT OR UPDATE ON slots
    FOR EACH ROW EXECUTE FUNCTION pirack_slot_told();
CREATE TRIGGER events_told AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION pirack_row_told('e');
CREATE TRIGGER operations_told AFTER INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION pirack_row_told('o');
