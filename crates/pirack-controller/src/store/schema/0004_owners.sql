-- The customers the site knows: the inventory's, and those staff added. Slots are
-- provisioned and customer tokens made only for these.
CREATE TABLE owners (
    name       TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    created_at {int} NOT NULL
);

-- The owner the inventory pins a slot to: it is provisioned for that owner alone,
-- also after a decommission cleared `owner`.
ALTER TABLE slots ADD COLUMN pinned_owner TEXT;
