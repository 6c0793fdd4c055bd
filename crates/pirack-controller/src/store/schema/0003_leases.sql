-- The controller lease (store::lease): who owns this store while it runs.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        {int} NOT NULL,
    what       TEXT NOT NULL,
    since      {int} NOT NULL,
    renewed_at {int} NOT NULL
);
