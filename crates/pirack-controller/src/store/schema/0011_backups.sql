-- Each slot's backups at each target: the last good one and the last try.
CREATE TABLE backup_status (
    slot_key        TEXT NOT NULL,
    target          TEXT NOT NULL,
    owner           TEXT,
    last_ok_at      {int},
    last_snapshot   TEXT,
    last_attempt_at {int} NOT NULL,
    -- restic's message when the last try failed, else NULL.
    last_error      TEXT,
    files           {int} NOT NULL,
    data_added      {int} NOT NULL,
    PRIMARY KEY (slot_key, target)
);

-- Each owner's repository at each target: its last prune and check.
CREATE TABLE backup_repos (
    owner      TEXT NOT NULL,
    target     TEXT NOT NULL,
    checked_at {int} NOT NULL,
    check_error TEXT,
    PRIMARY KEY (owner, target)
);

-- What an operation was asked to do, so a restart can do it again (a restore's
-- snapshot and target).
ALTER TABLE operations ADD COLUMN request TEXT;
