-- pirack state store, for SQLite and PostgreSQL alike: `{int}` is a 64-bit integer
-- column and `{id}` an increasing 64-bit key, spelt per backend by store::migrator.
-- Times are Unix milliseconds; every integer is 64-bit so the same Rust code reads
-- both through sqlx's Any driver.

-- One row per slot of the inventory (switch/port): its lifecycle state and who has it.
CREATE TABLE slots (
    slot_key     TEXT PRIMARY KEY,
    position     TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL,
    owner        TEXT,
    image        TEXT,
    board_serial TEXT,
    -- When the current state was entered: the watchdog's deadlines count from here.
    state_since  {int} NOT NULL,
    -- Power cycles the watchdog has spent on the current boot.
    recoveries   {int} NOT NULL DEFAULT 0,
    -- Bumped by every change, so concurrent writers notice each other.
    version      {int} NOT NULL DEFAULT 0,
    in_inventory {int} NOT NULL DEFAULT 1
);

-- Boards seen on the network, and the slot each was found in.
CREATE TABLE boards (
    serial     TEXT PRIMARY KEY,
    mac        TEXT NOT NULL,
    model      TEXT NOT NULL,
    slot_key   TEXT,
    held       {int} NOT NULL DEFAULT 0,
    first_seen {int} NOT NULL,
    last_seen  {int} NOT NULL
);

-- The address ledger: every allocation ever made to a slot, until released.
CREATE TABLE allocations (
    slot_key TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    vlan     {int} NOT NULL UNIQUE,
    storage  TEXT NOT NULL UNIQUE,
    ipv6     TEXT NOT NULL UNIQUE,
    fsid     {int} NOT NULL UNIQUE
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value {int} NOT NULL
);
INSERT INTO counters (name, value) VALUES ('next_fsid', 1);

CREATE TABLE images (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    imported_at {int} NOT NULL
);

-- The image each slot's root was built from, and the one kept for rollback.
CREATE TABLE roots (
    slot_key TEXT PRIMARY KEY,
    image    TEXT NOT NULL,
    previous TEXT,
    built_at {int} NOT NULL
);

CREATE TABLE power_ops (
    id          {id},
    slot_key    TEXT NOT NULL,
    action      TEXT NOT NULL,
    cause       TEXT NOT NULL,
    ok          {int} NOT NULL,
    detail      TEXT NOT NULL,
    started_at  {int} NOT NULL,
    finished_at {int} NOT NULL
);
CREATE INDEX power_ops_slot ON power_ops (slot_key, id);

CREATE TABLE events (
    id           {id},
    at           {int} NOT NULL,
    slot_key     TEXT,
    board_serial TEXT,
    kind         TEXT NOT NULL,
    cause        TEXT NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX events_slot ON events (slot_key, id);

-- API tokens: only a SHA-256 of each is kept.
CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    owner      TEXT,
    created_at {int} NOT NULL,
    revoked_at {int}
);

-- Long operations (provision, reimage, power) the API hands out ids for.
CREATE TABLE operations (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    slot_key   TEXT,
    owner      TEXT,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at {int} NOT NULL,
    updated_at {int} NOT NULL
);
