-- Zones an admin granted an owner through the API, beside `owners[].zones`.
CREATE TABLE zone_grants (
    zone       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    granted_at {int} NOT NULL
);
