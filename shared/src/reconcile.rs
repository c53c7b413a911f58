//! Reconciliation of a bucket with the `documents` table, decided key by key: what the bucket
//! holds under a key (its current version, or nothing) against what the row says. The walk
//! itself (listing, paging, repairs) is the worker's `reconcile` command; what counts as drift,
//! and what repairs it, is decided here so that it is tested on plain values.
//!
//! Keys are compared byte-wise: S3 lists keys in UTF-8 binary order, which is Rust's `str`
//! order and PostgreSQL's `COLLATE "C"`, so both sides walk in the same order.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A key's current version, as a listing of the bucket reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentObject {
    pub key: String,
    /// Without the quotes S3 puts around it, as rows store it.
    pub etag: String,
    /// `None` on an unversioned bucket (S3's `null` version).
    pub version_id: Option<String>,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// What reconciliation reads of a row: its identity and state, none of its metadata values.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RowFacts {
    pub file_key: String,
    pub status: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub file_size: Option<i64>,
    pub uploaded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// What a repair's write is guarded by: it applies only while the row is still as read.
    pub updated_at: DateTime<Utc>,
    /// `pending` for longer than the threshold, by the database's clock (the same clock the
    /// worker's gauge of stale pending rows reads).
    pub stale_pending: bool,
}

/// The kinds of drift, as the report names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drift {
    /// The key has a current object but no row, or a `deleted` row: its `ObjectCreated` event
    /// never reached the worker (or came before a removal it should have followed).
    ObjectWithoutRow,
    /// A `finalized` or `rejected` row whose key has no current object: its removal event was
    /// lost.
    RowWithoutObject,
    /// A `finalized` or `rejected` row that describes another object than the current one
    /// (ETag, version or size): the newer upload's event was lost.
    Mismatch,
    /// A `pending` row older than the threshold: the upload never completed (no object), or it
    /// did and its event was lost (an object).
    StalePending,
}

impl Drift {
    pub const ALL: [Drift; 4] = [
        Drift::ObjectWithoutRow,
        Drift::RowWithoutObject,
        Drift::Mismatch,
        Drift::StalePending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Drift::ObjectWithoutRow => "object_without_row",
            Drift::RowWithoutObject => "row_without_object",
            Drift::Mismatch => "mismatch",
            Drift::StalePending => "stale_pending",
        }
    }
}

/// What repairs a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Enqueue a replay event for the current object: the worker processes it like its lost
    /// event.
    Replay,
    /// Mark the row `deleted`, as a removal event would have.
    MarkDeleted,
}

impl Repair {
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Replay => "replay",
            Repair::MarkDeleted => "mark_deleted",
        }
    }
}

/// One key that drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub drift: Drift,
    /// For a mismatch, which of `etag`, `version`, `size` differ.
    pub differs: Vec<&'static str>,
    pub repair: Repair,
}

/// Compares what a key holds with its row. `None`: they agree, or the difference is work in
/// progress (a `pending` row younger than the threshold, whose upload or event may still come).
pub fn compare(object: Option<&CurrentObject>, row: Option<&RowFacts>) -> Option<Finding> {
    let finding = |drift, repair| {
        Some(Finding {
            drift,
            differs: Vec::new(),
            repair,
        })
    };
    let Some(row) = row else {
        return object.and_then(|_| finding(Drift::ObjectWithoutRow, Repair::Replay));
    };
    match (row.status.as_str(), object) {
        ("pending", _) if !row.stale_pending => None,
        ("pending", Some(_)) => finding(Drift::StalePending, Repair::Replay),
        ("pending", None) => finding(Drift::StalePending, Repair::MarkDeleted),
        ("deleted", Some(_)) => finding(Drift::ObjectWithoutRow, Repair::Replay),
        ("deleted", None) => None,
        (_, None) => finding(Drift::RowWithoutObject, Repair::MarkDeleted),
        (_, Some(object)) => {
            let mut differs = Vec::new();
            if row.etag.as_deref() != Some(object.etag.as_str()) {
                differs.push("etag");
            }
            if row.version_id != object.version_id {
                differs.push("version");
            }
            if row.file_size != i64::try_from(object.size).ok() {
                differs.push("size");
            }
            (!differs.is_empty()).then_some(Finding {
                drift: Drift::Mismatch,
                differs,
                repair: Repair::Replay,
            })
        }
    }
}

/// Whether a key falls in the `--since` window: its object was modified, or its row uploaded
/// (created, for a row that has no upload time yet), at or after `since`. Either side counts, so
/// that an object overwritten inside the window is compared with its older row.
pub fn in_window(
    since: Option<DateTime<Utc>>,
    object: Option<&CurrentObject>,
    row: Option<&RowFacts>,
) -> bool {
    let Some(since) = since else {
        return true;
    };
    object
        .and_then(|o| o.last_modified)
        .is_some_and(|t| t >= since)
        || row.is_some_and(|r| r.uploaded_at.unwrap_or(r.created_at) >= since)
}

impl Finding {
    /// The finding as one line of `reconcile --json`: the key (the operator's handle on it) and
    /// the identity of both sides, never a metadata value.
    pub fn to_json(
        &self,
        key: &str,
        object: Option<&CurrentObject>,
        row: Option<&RowFacts>,
    ) -> Value {
        json!({
            "finding": self.drift.as_str(),
            "key": key,
            "differs": self.differs,
            "repair": self.repair.as_str(),
            "object": object.map(|o| json!({
                "etag": o.etag,
                "version_id": o.version_id,
                "size": o.size,
                "last_modified": o.last_modified,
            })),
            "row": row.map(|r| json!({
                "status": r.status,
                "etag": r.etag,
                "version_id": r.version_id,
                "size": r.file_size,
                "uploaded_at": r.uploaded_at,
                "created_at": r.created_at,
            })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> CurrentObject {
        CurrentObject {
            key: "medical/a.dcm".into(),
            etag: "9e107d9d372bb6826bd81d3542a419d6".into(),
            version_id: Some("v2".into()),
            size: 2048,
            last_modified: DateTime::from_timestamp(1_764_000_000, 0),
        }
    }

    fn row(status: &str) -> RowFacts {
        RowFacts {
            file_key: "medical/a.dcm".into(),
            status: status.into(),
            etag: Some("9e107d9d372bb6826bd81d3542a419d6".into()),
            version_id: Some("v2".into()),
            file_size: Some(2048),
            uploaded_at: DateTime::from_timestamp(1_764_000_000, 0),
            created_at: DateTime::from_timestamp(1_763_999_000, 0).unwrap(),
            updated_at: DateTime::from_timestamp(1_764_000_100, 0).unwrap(),
            stale_pending: false,
        }
    }

    fn drift(object: Option<&CurrentObject>, row: Option<&RowFacts>) -> Option<(Drift, Repair)> {
        compare(object, row).map(|f| (f.drift, f.repair))
    }

    #[test]
    fn a_row_that_describes_the_current_object_is_no_finding() {
        for status in ["finalized", "rejected"] {
            assert_eq!(compare(Some(&object()), Some(&row(status))), None);
        }
        assert_eq!(compare(None, Some(&row("deleted"))), None);
        assert_eq!(compare(None, None), None);
    }

    #[test]
    fn each_kind_of_drift_is_found_with_its_repair() {
        let o = object();
        assert_eq!(
            drift(Some(&o), None),
            Some((Drift::ObjectWithoutRow, Repair::Replay))
        );
        assert_eq!(
            drift(Some(&o), Some(&row("deleted"))),
            Some((Drift::ObjectWithoutRow, Repair::Replay)),
            "a deleted row under a live object"
        );
        for status in ["finalized", "rejected"] {
            assert_eq!(
                drift(None, Some(&row(status))),
                Some((Drift::RowWithoutObject, Repair::MarkDeleted))
            );
        }
        let stale = RowFacts {
            stale_pending: true,
            ..row("pending")
        };
        assert_eq!(
            drift(Some(&o), Some(&stale)),
            Some((Drift::StalePending, Repair::Replay)),
            "uploaded, its event lost"
        );
        assert_eq!(
            drift(None, Some(&stale)),
            Some((Drift::StalePending, Repair::MarkDeleted)),
            "never uploaded"
        );
    }

    #[test]
    fn a_young_pending_row_is_work_in_progress() {
        assert_eq!(compare(Some(&object()), Some(&row("pending"))), None);
        assert_eq!(compare(None, Some(&row("pending"))), None);
    }

    #[test]
    fn a_mismatch_names_what_differs() {
        let newer = CurrentObject {
            etag: "0cc175b9c0f1b6a831c399e269772661".into(),
            version_id: Some("v3".into()),
            size: 4096,
            ..object()
        };
        let finding = compare(Some(&newer), Some(&row("finalized"))).unwrap();
        assert_eq!(finding.drift, Drift::Mismatch);
        assert_eq!(finding.repair, Repair::Replay);
        assert_eq!(finding.differs, ["etag", "version", "size"]);
        let unversioned = CurrentObject {
            version_id: None,
            ..object()
        };
        assert_eq!(
            compare(Some(&unversioned), Some(&row("finalized")))
                .unwrap()
                .differs,
            ["version"]
        );
        let without_etag = RowFacts {
            etag: None,
            ..row("rejected")
        };
        assert_eq!(
            compare(Some(&object()), Some(&without_etag))
                .unwrap()
                .differs,
            ["etag"]
        );
    }

    #[test]
    fn the_window_takes_either_side() {
        let o = object();
        let r = row("finalized");
        let at = |secs| DateTime::from_timestamp(secs, 0);
        assert!(in_window(None, Some(&o), Some(&r)));
        assert!(in_window(at(1_764_000_000), Some(&o), None));
        assert!(!in_window(at(1_764_000_001), Some(&o), Some(&r)));
        let overwritten = CurrentObject {
            last_modified: at(1_765_000_000),
            ..object()
        };
        assert!(
            in_window(at(1_764_500_000), Some(&overwritten), Some(&r)),
            "an object overwritten in the window is compared with its older row"
        );
        let pending = RowFacts {
            uploaded_at: None,
            ..row("pending")
        };
        assert!(in_window(at(1_763_999_000), None, Some(&pending)));
        assert!(!in_window(at(1_763_999_001), None, Some(&pending)));
    }

    #[test]
    fn the_json_line_names_the_key_and_identities_only() {
        let newer = CurrentObject {
            size: 1,
            ..object()
        };
        let r = row("finalized");
        let finding = compare(Some(&newer), Some(&r)).unwrap();
        let line = finding.to_json(&newer.key, Some(&newer), Some(&r));
        assert_eq!(line["finding"], "mismatch");
        assert_eq!(line["key"], "medical/a.dcm");
        assert_eq!(line["differs"], json!(["size"]));
        assert_eq!(line["repair"], "replay");
        assert_eq!(line["object"]["size"], 1);
        assert_eq!(line["row"]["status"], "finalized");
        let fields: Vec<&String> = line["row"].as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "etag",
                "size",
                "status",
                "uploaded_at",
                "version_id"
            ]
        );
    }
}
