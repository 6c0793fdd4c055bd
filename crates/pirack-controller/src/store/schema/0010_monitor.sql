-- Alert routes kept through the API: a customer's own (owner set) or the
-- staff's (owner NULL), each a URI.
CREATE TABLE alert_routes (
    id         TEXT PRIMARY KEY,
    owner      TEXT,
    uri        TEXT NOT NULL,
    created_at {int} NOT NULL
);

-- One alert per fault: a slot's failing checks, or a cause (a switch that stopped
-- answering) that its slots' failures are grouped under.
CREATE TABLE alerts (
    id          {id},
    cause       TEXT NOT NULL,
    summary     TEXT NOT NULL,
    -- JSON: the slots it covers, with their positions and owners.
    slots       TEXT NOT NULL,
    opened_at   {int} NOT NULL,
    resolved_at {int},
    -- When it was last sent (first, or repeated).
    sent_at     {int},
    repeats     {int} NOT NULL
);
CREATE INDEX alerts_open ON alerts (resolved_at, cause);

-- Each route told of an alert: how and how it went.
CREATE TABLE deliveries (
    id       {id},
    alert_id {int} NOT NULL,
    route    TEXT NOT NULL,
    owner    TEXT,
    notice   TEXT NOT NULL,
    status   TEXT NOT NULL,
    attempts {int} NOT NULL,
    detail   TEXT NOT NULL,
    at       {int} NOT NULL
);
CREATE INDEX deliveries_alert ON deliveries (alert_id, id);

-- Maintenance windows: no checks and no alerts in their scope while they last.
CREATE TABLE maintenance (
    id         TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    owner      TEXT,
    starts_at  {int} NOT NULL,
    ends_at    {int} NOT NULL,
    reason     TEXT NOT NULL,
    created_at {int} NOT NULL
);
