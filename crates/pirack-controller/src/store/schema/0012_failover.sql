-- Failover (store::lease): each lease's fencing generation, raised at every
-- change of holder (a holder's writes check it, so one that lost its lease
-- writes nothing more), and its lifetime as its holder set it. A lease given
-- up is kept (renewed_at 0) so that its generation never goes back.
ALTER TABLE leases ADD COLUMN generation {int} NOT NULL DEFAULT 1;
ALTER TABLE leases ADD COLUMN ttl_ms {int} NOT NULL DEFAULT 15000;

-- Every controller on this store, serving or standing by, as it last said.
CREATE TABLE controllers (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        {int} NOT NULL,
    -- 'serving' or 'standby'.
    state      TEXT NOT NULL,
    api        TEXT NOT NULL,
    started_at {int} NOT NULL,
    seen_at    {int} NOT NULL
);

-- Each lease taken from a holder that lapsed (not one given up).
CREATE TABLE failovers (
    id          {id},
    name        TEXT NOT NULL,
    from_holder TEXT NOT NULL,
    to_holder   TEXT NOT NULL,
    generation  {int} NOT NULL,
    at          {int} NOT NULL,
    -- How long the old holder had not renewed it.
    lapsed_ms   {int} NOT NULL
);
