-- Roles (crate::cluster): a rack controller holds its fileserver's shelves
-- under the lease `rack:FILESERVER`, the region leader its singleton duties
-- under `region`; the single lease `controller` of one-box controllers is
-- gone (a controller of this version takes `rack:...` instead).
DELETE FROM leases WHERE name = 'controller';

-- What each controller does: `rack`, `region` or `all`.
ALTER TABLE controllers ADD COLUMN role TEXT NOT NULL DEFAULT 'all';

-- Who runs an operation (the controller's `host:pid`): one asked of a region
-- controller is queued (no runner, the cause and actor in `request`) for the
-- rack controller holding the shelves, which takes it and runs it.
ALTER TABLE operations ADD COLUMN runner TEXT;
