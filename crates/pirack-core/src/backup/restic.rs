//! restic's `--json` output (0.14): a `backup`'s progress lines and its
//! summary, and `snapshots`' list. Each line is judged alone: a line that is
//! not one of these (restic prints warnings as text) is `Other`, never a
//! panic.

use serde::Deserialize;

/// One line of `restic backup --json`.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Status(Status),
    Summary(Summary),
    /// A file restic could not read, with what it was doing.
    Error {
        item: String,
        message: String,
    },
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub percent_done: f64,
    #[serde(default)]
    pub total_files: u64,
    #[serde(default)]
    pub files_done: u64,
    #[serde(default)]
    pub total_bytes: u64,
    #[serde(default)]
    pub bytes_done: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub files_new: u64,
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub files_unmodified: u64,
    #[serde(default)]
    pub data_added: u64,
    #[serde(default)]
    pub total_files_processed: u64,
    #[serde(default)]
    pub total_bytes_processed: u64,
    #[serde(default)]
    pub total_duration: f64,
    pub snapshot_id: String,
}

#[derive(Deserialize)]
struct Tagged {
    message_type: String,
}

#[derive(Deserialize)]
struct ErrorLine {
    #[serde(default)]
    error: serde_json::Value,
    #[serde(default)]
    item: String,
}

/// Reads one line of `restic backup --json`.
pub fn line(text: &str) -> Line {
    let Ok(tag) = serde_json::from_str::<Tagged>(text) else {
        return Line::Other;
    };
    match tag.message_type.as_str() {
        "status" => serde_json::from_str(text).map_or(Line::Other, Line::Status),
        "summary" => serde_json::from_str(text).map_or(Line::Other, Line::Summary),
        "error" => match serde_json::from_str::<ErrorLine>(text) {
            Ok(e) => Line::Error {
                item: e.item,
                message: match e.error {
                    serde_json::Value::Object(m) => m
                        .get("message")
                        .and_then(|v| v.as_str())
                        .unwrap_or("unreadable")
                        .to_string(),
                    serde_json::Value::String(s) => s,
                    _ => "unreadable".into(),
                },
            },
            Err(_) => Line::Other,
        },
        _ => Line::Other,
    }
}

/// One snapshot of `restic snapshots --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    /// RFC 3339, as restic writes it.
    pub time: String,
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Reads `restic snapshots --json`.
pub fn snapshots(text: &str) -> Result<Vec<Snapshot>, serde_json::Error> {
    // restic prints `null` for a repository without snapshots.
    Ok(serde_json::from_str::<Option<Vec<Snapshot>>>(text)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Stats {
    total_size: u64,
}

/// Reads `restic stats --json`: the total size.
pub fn stats(text: &str) -> Result<u64, serde_json::Error> {
    Ok(serde_json::from_str::<Stats>(text)?.total_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_restic_0_14_prints() {
        let s = line(
            r#"{"message_type":"status","percent_done":0.5,"total_files":10,"files_done":5,"total_bytes":2048,"bytes_done":1024,"current_files":["/a"]}"#,
        );
        assert_eq!(
            s,
            Line::Status(Status {
                percent_done: 0.5,
                total_files: 10,
                files_done: 5,
                total_bytes: 2048,
                bytes_done: 1024
            })
        );
        let s = line(
            r#"{"message_type":"summary","files_new":3,"files_changed":0,"files_unmodified":7,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":2,"data_blobs":3,"tree_blobs":2,"data_added":4096,"total_files_processed":10,"total_bytes_processed":2048,"total_duration":0.25,"snapshot_id":"8f7e6d5c"}"#,
        );
        let Line::Summary(s) = s else { panic!("{s:?}") };
        assert_eq!((s.files_new, s.snapshot_id.as_str()), (3, "8f7e6d5c"));
        let e = line(
            r#"{"message_type":"error","error":{"Op":"open","Path":"/x","Err":13},"during":"archival","item":"/x"}"#,
        );
        assert_eq!(
            e,
            Line::Error {
                item: "/x".into(),
                message: "unreadable".into()
            }
        );
        for other in [
            "",
            "Fatal: wrong password",
            "{}",
            r#"{"message_type":"summary"}"#,
        ] {
            assert_eq!(line(other), Line::Other, "{other}");
        }
    }

    #[test]
    fn reads_snapshot_lists() {
        assert!(snapshots("null").unwrap().is_empty());
        let list = snapshots(
            r#"[{"time":"2026-12-03T01:00:00.5+00:00","tree":"ab","paths":["/r"],"hostname":"A-01","username":"root","tags":["pirack","slot=A-01"],"id":"0123456789abcdef","short_id":"01234567"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].hostname, "A-01");
        assert!(snapshots("[{]").is_err());
        assert_eq!(
            stats(r#"{"total_size":1234,"total_uncompressed_size":1234,"total_blob_count":3,"snapshots_count":2}"#).unwrap(),
            1234
        );
        assert!(stats("{}").is_err());
    }
}
