-- The PROXY protocol header each slot's Pi is sent by the proxy (off, v1, v2),
-- set by its owner; a slot without a row gets v1.
CREATE TABLE proxy_settings (
    slot       TEXT PRIMARY KEY,
    protocol   TEXT NOT NULL,
    updated_at {int} NOT NULL
);
