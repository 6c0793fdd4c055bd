-- Names customers manage in their own zones: the records each should hold (JSON).
CREATE TABLE dns_names (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    records    TEXT NOT NULL,
    updated_at {int} NOT NULL
);
