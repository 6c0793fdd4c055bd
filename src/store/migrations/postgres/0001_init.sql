-- pirack state store, PostgreSQL form. Times are Unix milliseconds; every integer is
-- 64-bit so the same Rust code reads SQLite and PostgreSQL through sqlx's Any driver.

-- One row per slot of the inventory (switch/port): its lifecycle state and who has it.
CREATE TABLE slots (
    slot_key     TEXT PRIMARY KEY,
    position     TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL,
    owner        TEXT,
    image        TEXT,
    board_serial TEXT,
    -- When the current state was entered: the watchdog's deadlines count from here.
    state_since  BIGINT NOT NULL,
    -- Power cycles the watchdog has spent on the current boot.
    recoveries   BIGINT NOT NULL DEFAULT 0,
    -- Bumped by every change, so concurrent writers notice each other.
    version      BIGINT NOT NULL DEFAULT 0,
    in_inventory BIGINT NOT NULL DEFAULT 1
);

-- Boards seen on the network, and the slot each was found in.
CREATE TABLE boards (
    serial     TEXT PRIMARY KEY,
    mac        TEXT NOT NULL,
    model      TEXT NOT NULL,
    slot_key   TEXT,
    held       BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

-- The address ledger: every allocation ever made to a slot, until released.
CREATE TABLE allocations (
    slot_key TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    vlan     BIGINT NOT NULL UNIQUE,
    storage  TEXT NOT NULL UNIQUE,
    ipv6     TEXT NOT NULL UNIQUE,
    fsid     BIGINT NOT NULL UNIQUE
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('next_fsid', 1);

CREATE TABLE images (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);

-- The image each slot's root was built from, and the one kept for rollback.
CREATE TABLE roots (
    slot_key TEXT PRIMARY KEY,
    image    TEXT NOT NULL,
    previous TEXT,
    built_at BIGINT NOT NULL
);

CREATE TABLE power_ops (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slot_key    TEXT NOT NULL,
    action      TEXT NOT NULL,
    cause       TEXT NOT NULL,
    ok          BIGINT NOT NULL,
    detail      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL
);
CREATE INDEX power_ops_slot ON power_ops (slot_key, id);

CREATE TABLE events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
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
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Long operations (provision, reimage, power) the API hands out ids for.
CREATE TABLE operations (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    slot_key   TEXT,
    owner      TEXT,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
