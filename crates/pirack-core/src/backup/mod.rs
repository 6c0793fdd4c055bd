//! Backups of the slots' roots, the pure parts: the inventory's `backup:`
//! section, where each owner's repository lives at each target, when each
//! slot's backup is due (spread over the window so a shelf does not start at
//! once), restic's retention arguments, restic's `--json` messages, and a target's free
//! space as `sftp` reports it.

pub mod model;
pub mod plan;
pub mod restic;
pub mod space;
