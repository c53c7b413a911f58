//! What arrives in a queue message body: S3 event notifications, directly (S3 → SQS) or inside an
//! SNS envelope (S3 → SNS → SQS), S3's `s3:TestEvent`, and S3 events routed through Amazon
//! EventBridge (S3 → EventBridge rule → SQS), whose envelope carries one object in `detail`.
//!
//! The records are parsed with `aws_lambda_events`' S3 types, after a normalisation that makes
//! the emulator's events (moto) acceptable: it writes `eventTime` without a timezone and leaves
//! out `userIdentity`, `requestParameters` and `responseElements`. Real S3 sends all of them; the
//! normalisation only ever adds what is missing, so both shapes parse to the same record.

use aws_lambda_events::event::s3::S3EventRecord;
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// The SQS message attribute that marks an event `docworker replay` enqueued, beside the event
/// contract it travels with: the worker logs it and records it on the audit trail.
pub const REPLAY_ATTRIBUTE: &str = "docworker-replay";

/// Everything a message body can legitimately be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Sent once by S3 when a notification configuration is saved; carries no object.
    Test { bucket: Option<String> },
    /// One or more object events (S3 sends one, but the format allows several).
    Records(Vec<ObjectEvent>),
}

/// What the event says happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `ObjectCreated:*`: new bytes to verify.
    Created,
    /// `ObjectRemoved:*` and lifecycle expiry (`LifecycleExpiration:Delete`, and on a versioned
    /// bucket `LifecycleExpiration:DeleteMarkerCreated`): something under the key was removed,
    /// a version or the object itself. What the key holds now decides what it means.
    Removed,
    /// Restores, tagging, ACL, replication and transition events: the bytes did not change, so
    /// there is nothing to process. They are logged and acknowledged.
    Other,
}

/// One S3 event record, reduced to what processing needs, with the key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub kind: EventKind,
    /// As S3 wrote it, e.g. `ObjectCreated:Put`.
    pub name: String,
    pub bucket: String,
    /// The decoded key: exactly the key the object was stored under.
    pub key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key ordering token (hex); absent in some emulators and for non-PUT/DELETE events.
    pub sequencer: Option<String>,
    pub time: DateTime<Utc>,
}

/// A body the worker cannot understand. These are poison: no retry will make them parse, so the
/// worker leaves them for the dead-letter queue. Messages never quote the body (it may be large,
/// and it is not ours to log).
#[derive(Debug, Error)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error(
        "message body is JSON but not an S3 event notification (no Records, not an s3:TestEvent, not an SNS envelope, not an EventBridge S3 event)"
    )]
    UnknownShape,
    #[error("SNS envelope has no string Message")]
    SnsWithoutMessage,
    #[error("S3 event record {index} is malformed: {source}")]
    Malformed {
        index: usize,
        source: serde_json::Error,
    },
    #[error("S3 event record {index} has eventVersion {version}; only 2.x is understood")]
    UnsupportedVersion { index: usize, version: String },
    #[error("S3 event record {index} has no {field}")]
    Missing { index: usize, field: &'static str },
    #[error("S3 event record {index} has a size that is not a byte count")]
    BadSize { index: usize },
    #[error("S3 event record {index} has an object key that is not percent-encoded UTF-8")]
    BadKey { index: usize },
    #[error("S3 event has no records")]
    NoRecords,
}

impl EventError {
    /// Every [`label`](Self::label), so that metrics start at 0 for each reason. Keep in step
    /// with `label`.
    pub const LABELS: &'static [&'static str] = &[
        "not_json",
        "unknown_shape",
        "sns_without_message",
        "malformed_record",
        "unsupported_version",
        "missing_field",
        "bad_size",
        "bad_key",
        "no_records",
    ];

    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EventError::NotJson(_) => "not_json",
            EventError::UnknownShape => "unknown_shape",
            EventError::SnsWithoutMessage => "sns_without_message",
            EventError::Malformed { .. } => "malformed_record",
            EventError::UnsupportedVersion { .. } => "unsupported_version",
            EventError::Missing { .. } => "missing_field",
            EventError::BadSize { .. } => "bad_size",
            EventError::BadKey { .. } => "bad_key",
            EventError::NoRecords => "no_records",
        }
    }
}

impl Notification {
    /// Parses a queue message body.
    pub fn parse(body: &str) -> Result<Notification, EventError> {
        let value: Value = serde_json::from_str(body).map_err(EventError::NotJson)?;
        Self::from_value(value, true)
    }

    fn from_value(value: Value, envelope_allowed: bool) -> Result<Notification, EventError> {
        let Value::Object(mut map) = value else {
            return Err(EventError::UnknownShape);
        };
        if envelope_allowed && map.get("Type").and_then(Value::as_str) == Some("Notification") {
            let Some(Value::String(inner)) = map.remove("Message") else {
                return Err(EventError::SnsWithoutMessage);
            };
            let inner: Value = serde_json::from_str(&inner).map_err(EventError::NotJson)?;
            return Self::from_value(inner, false);
        }
        if map.contains_key("detail-type") && map.contains_key("detail") {
            return eventbridge(Value::Object(map)).map(|event| Notification::Records(vec![event]));
        }
        if map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            let bucket = map.get("Bucket").and_then(Value::as_str).map(str::to_owned);
            return Ok(Notification::Test { bucket });
        }
        let Some(Value::Array(records)) = map.remove("Records") else {
            return Err(EventError::UnknownShape);
        };
        if records.is_empty() {
            return Err(EventError::NoRecords);
        }
        records
            .into_iter()
            .enumerate()
            .map(|(index, mut record)| {
                normalise_record(&mut record);
                let record: S3EventRecord = serde_json::from_value(record)
                    .map_err(|source| EventError::Malformed { index, source })?;
                ObjectEvent::from_record(index, record)
            })
            .collect::<Result<_, _>>()
            .map(Notification::Records)
    }
}

/// An EventBridge envelope as S3 sends it ("EventBridge event message structure" in the S3
/// user guide): `detail-type` says what happened, `detail` carries one object. Fields docworker
/// does not use (`id`, `account`, `resources`, `request-id`, `requester`, …) are ignored.
#[derive(Deserialize)]
struct EventBridgeEnvelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    time: DateTime<Utc>,
    detail: EventBridgeDetail,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: Option<EventBridgeBucket>,
    object: Option<EventBridgeObject>,
    /// The API that caused the event: `PutObject`, `POST Object`, `CopyObject`,
    /// `CompleteMultipartUpload`, `DeleteObject`, `Lifecycle Expiration`.
    reason: Option<String>,
    /// On `Object Deleted`: `Permanently Deleted` or `Delete Marker Created`.
    #[serde(rename = "deletion-type")]
    deletion_type: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeBucket {
    name: Option<String>,
}

#[derive(Deserialize)]
struct EventBridgeObject {
    key: Option<String>,
    size: Option<i64>,
    etag: Option<String>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// One EventBridge-delivered S3 event as the [`ObjectEvent`] a direct notification would give:
/// the same key encoding (form encoding, as in direct notifications), the same sequencer, and
/// the event named as S3 names it in notifications, so that ordering, replay and the audit trail
/// cannot tell the delivery paths apart. A `source` other than `aws.s3` is not an S3 event.
fn eventbridge(value: Value) -> Result<ObjectEvent, EventError> {
    const INDEX: usize = 0;
    let envelope: EventBridgeEnvelope =
        serde_json::from_value(value).map_err(|source| EventError::Malformed {
            index: INDEX,
            source,
        })?;
    if envelope.source != "aws.s3" {
        return Err(EventError::UnknownShape);
    }
    let missing = |field| EventError::Missing {
        index: INDEX,
        field,
    };
    let detail = envelope.detail;
    let bucket = detail
        .bucket
        .and_then(|b| b.name)
        .ok_or(missing("detail.bucket.name"))?;
    let object = detail.object.ok_or(missing("detail.object"))?;
    let raw_key = object.key.ok_or(missing("detail.object.key"))?;
    let key = decode_key(&raw_key).ok_or(EventError::BadKey { index: INDEX })?;
    let size = object
        .size
        .map(u64::try_from)
        .transpose()
        .map_err(|_| EventError::BadSize { index: INDEX })?;
    let name = eventbridge_name(
        &envelope.detail_type,
        detail.reason.as_deref().unwrap_or_default(),
        detail.deletion_type.as_deref().unwrap_or_default(),
    );
    Ok(ObjectEvent {
        kind: EventKind::of_name(&name),
        name,
        bucket,
        key,
        size,
        etag: non_empty(object.etag),
        version_id: non_empty(object.version_id),
        sequencer: non_empty(object.sequencer),
        time: envelope.time,
    })
}

/// The notification event name for an EventBridge `detail-type` and `reason`. Types that do not
/// change the bytes (`Object Restore Completed`, `Object Tags Added`, …) keep their own name and
/// are classified as [`EventKind::Other`].
fn eventbridge_name(detail_type: &str, reason: &str, deletion_type: &str) -> String {
    let marker = deletion_type == "Delete Marker Created";
    match (detail_type, reason) {
        ("Object Created", "PutObject") => "ObjectCreated:Put".into(),
        ("Object Created", "POST Object") => "ObjectCreated:Post".into(),
        ("Object Created", "CopyObject") => "ObjectCreated:Copy".into(),
        ("Object Created", other) => format!("ObjectCreated:{}", other.replace(' ', "")),
        ("Object Deleted", "Lifecycle Expiration") if marker => {
            "LifecycleExpiration:DeleteMarkerCreated".into()
        }
        ("Object Deleted", "Lifecycle Expiration") => "LifecycleExpiration:Delete".into(),
        ("Object Deleted", _) if marker => "ObjectRemoved:DeleteMarkerCreated".into(),
        ("Object Deleted", _) => "ObjectRemoved:Delete".into(),
        (other, _) => other.to_owned(),
    }
}

/// Adds what an emulator leaves out, never changing what is present.
fn normalise_record(record: &mut Value) {
    let Value::Object(record) = record else {
        return;
    };
    for field in ["userIdentity", "requestParameters", "responseElements"] {
        record
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(Value::String(time)) = record.get_mut("eventTime")
        && !has_timezone(time)
    {
        time.push('Z');
    }
}

/// S3 writes UTC with a `Z`; an RFC 3339 time may also end in `±hh:mm`.
fn has_timezone(time: &str) -> bool {
    let Some((_, clock)) = time.split_once('T') else {
        return true; // not a time we can fix; let the parser explain
    };
    clock.ends_with('Z') || clock.ends_with('z') || clock.contains('+') || clock.contains('-')
}

impl ObjectEvent {
    fn from_record(index: usize, record: S3EventRecord) -> Result<ObjectEvent, EventError> {
        let version = record.event_version.as_deref().unwrap_or_default();
        if version.split('.').next() != Some("2") {
            return Err(EventError::UnsupportedVersion {
                index,
                version: version.to_owned(),
            });
        }
        let name = record.event_name.ok_or(EventError::Missing {
            index,
            field: "eventName",
        })?;
        let bucket = record.s3.bucket.name.ok_or(EventError::Missing {
            index,
            field: "s3.bucket.name",
        })?;
        let raw_key = record.s3.object.key.ok_or(EventError::Missing {
            index,
            field: "s3.object.key",
        })?;
        let key = decode_key(&raw_key).ok_or(EventError::BadKey { index })?;
        let size = record
            .s3
            .object
            .size
            .map(u64::try_from)
            .transpose()
            .map_err(|_| EventError::BadSize { index })?;
        Ok(ObjectEvent {
            kind: EventKind::of_name(&name),
            name,
            bucket,
            key,
            size,
            etag: non_empty(record.s3.object.e_tag),
            version_id: non_empty(record.s3.object.version_id),
            sequencer: non_empty(record.s3.object.sequencer),
            time: record.event_time,
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl EventKind {
    fn of_name(name: &str) -> EventKind {
        let name = name.strip_prefix("s3:").unwrap_or(name);
        if name.starts_with("ObjectCreated:") {
            EventKind::Created
        } else if name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:") {
            EventKind::Removed
        } else {
            EventKind::Other
        }
    }
}

/// Decodes a key the way S3 encodes it in notifications: form encoding, so `+` is a space and
/// `%XX` escapes are UTF-8 bytes (a literal `+` arrives as `%2B`). The `+` must become a space
/// before the escapes are decoded, or an escaped plus would turn into a space too.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|key| key.into_owned())
}

/// Encodes a key as S3 writes it into event notifications (the inverse of [`decode_key`]): form
/// encoding with `/` kept, so space is `+` and a literal `+` is `%2B`. Used to write S3-shaped
/// events (replay, tests).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_decoding_keys_round_trip() {
        for key in ["medical/a b+0é.dcm", "reports/100%/x&y=z?.pdf", "plain"] {
            assert_eq!(decode_key(&encode_key(key)).as_deref(), Some(key));
        }
        assert_eq!(encode_key("medical/a b+c"), "medical/a+b%2Bc");
    }

    /// The sample from AWS's "Event message structure" documentation, as real S3 sends it.
    const REAL_S3: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2",
      "eventTime":"1970-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put",
      "userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},
      "requestParameters":{"sourceIPAddress":"127.0.0.1"},
      "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
      "s3":{"s3SchemaVersion":"1.0","configurationId":"testRule",
        "bucket":{"name":"amzn-s3-demo-bucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::amzn-s3-demo-bucket"},
        "object":{"key":"medical/HappyFace.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
          "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    /// What moto 5 sends for the same upload: no timezone, no identity/request/response blocks,
    /// no sequencer, and a key encoded more eagerly (`/` as `%2F`).
    const MOTO: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
      "eventTime":"2026-11-24T21:51:41.581265","eventName":"ObjectCreated:Put",
      "s3":{"s3SchemaVersion":"1.0","configurationId":"docworker",
        "bucket":{"name":"clinic-docs","arn":"arn:aws:s3:::clinic-docs"},
        "object":{"key":"medical%2Fa+b%2B0%C3%A9.dcm","size":2048,"eTag":"9e107d9d372bb6826bd81d3542a419d6"}}}]}"#;

    fn only_record(body: &str) -> ObjectEvent {
        match Notification::parse(body).expect("parses") {
            Notification::Records(mut records) if records.len() == 1 => records.remove(0),
            other => panic!("expected one record, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_real_s3_sample() {
        let event = only_record(REAL_S3);
        assert_eq!(event.kind, EventKind::Created);
        assert_eq!(event.bucket, "amzn-s3-demo-bucket");
        assert_eq!(event.key, "medical/HappyFace.jpg");
        assert_eq!(event.size, Some(1024));
        assert_eq!(event.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
        assert_eq!(
            event.version_id.as_deref(),
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
        );
        assert_eq!(event.time.timestamp(), 0);
    }

    #[test]
    fn parses_moto_events_and_decodes_their_keys() {
        let event = only_record(MOTO);
        assert_eq!(event.key, "medical/a b+0é.dcm");
        assert_eq!(event.size, Some(2048));
        assert_eq!(event.sequencer, None);
        assert_eq!(event.version_id, None);
        assert_eq!(event.time.to_rfc3339(), "2026-11-24T21:51:41.581265+00:00");
    }

    #[test]
    fn both_key_encodings_give_the_same_key() {
        assert_eq!(
            decode_key("medical/a+b%2B0%C3%A9.dcm"),
            decode_key("medical%2Fa+b%2B0%C3%A9.dcm")
        );
        assert_eq!(decode_key("a%2b%2B+c").as_deref(), Some("a++ c"));
        assert_eq!(decode_key("%FF%FE"), None, "not UTF-8");
    }

    #[test]
    fn recognises_the_test_event() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-24T21:51:41.000Z","Bucket":"clinic-docs","RequestId":"X","HostId":"Y"}"#;
        assert_eq!(
            Notification::parse(body).unwrap(),
            Notification::Test {
                bucket: Some("clinic-docs".into())
            }
        );
    }

    #[test]
    fn unwraps_an_sns_envelope() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:uploads",
            "Subject": "Amazon S3 Notification",
            "Message": REAL_S3,
            "Timestamp": "2026-11-24T21:51:41.000Z",
            "SignatureVersion": "1",
        });
        let event = only_record(&envelope.to_string());
        assert_eq!(event.key, "medical/HappyFace.jpg");
    }

    #[test]
    fn unwraps_a_test_event_inside_sns() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "Message": r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b-1"}"#,
        });
        assert!(matches!(
            Notification::parse(&envelope.to_string()),
            Ok(Notification::Test { .. })
        ));
    }

    #[test]
    fn reads_several_records_in_order() {
        let mut value: Value = serde_json::from_str(REAL_S3).unwrap();
        let mut second = value["Records"][0].clone();
        second["s3"]["object"]["key"] = "reports/b.pdf".into();
        second["eventName"] = "ObjectRemoved:Delete".into();
        value["Records"].as_array_mut().unwrap().push(second);
        let Notification::Records(records) = Notification::parse(&value.to_string()).unwrap()
        else {
            panic!("records expected");
        };
        let keys: Vec<_> = records.iter().map(|r| (r.key.as_str(), r.kind)).collect();
        assert_eq!(
            keys,
            [
                ("medical/HappyFace.jpg", EventKind::Created),
                ("reports/b.pdf", EventKind::Removed)
            ]
        );
    }

    #[test]
    fn accepts_any_2x_event_version_and_refuses_others() {
        for (version, ok) in [
            ("2.0", true),
            ("2.3", true),
            ("2.12", true),
            ("1.0", false),
            ("3.0", false),
            ("", false),
        ] {
            let body = REAL_S3.replace("\"2.1\"", &format!("\"{version}\""));
            assert_eq!(
                Notification::parse(&body).is_ok(),
                ok,
                "eventVersion {version:?}"
            );
        }
    }

    #[test]
    fn classifies_event_names() {
        assert_eq!(
            EventKind::of_name("ObjectCreated:CompleteMultipartUpload"),
            EventKind::Created
        );
        assert_eq!(
            EventKind::of_name("s3:ObjectCreated:Copy"),
            EventKind::Created
        );
        assert_eq!(
            EventKind::of_name("ObjectRemoved:DeleteMarkerCreated"),
            EventKind::Removed
        );
        assert_eq!(
            EventKind::of_name("LifecycleExpiration:Delete"),
            EventKind::Removed
        );
        assert_eq!(
            EventKind::of_name("LifecycleExpiration:DeleteMarkerCreated"),
            EventKind::Removed
        );
        assert_eq!(
            EventKind::of_name("ObjectRestore:Completed"),
            EventKind::Other
        );
    }

    #[test]
    fn refuses_bodies_that_are_not_s3_events() {
        assert!(matches!(
            Notification::parse("not json"),
            Err(EventError::NotJson(_))
        ));
        assert!(matches!(
            Notification::parse("[1,2]"),
            Err(EventError::UnknownShape)
        ));
        assert!(matches!(
            Notification::parse(r#"{"hello":"world"}"#),
            Err(EventError::UnknownShape)
        ));
        assert!(matches!(
            Notification::parse(r#"{"Records":[]}"#),
            Err(EventError::NoRecords)
        ));
        assert!(matches!(
            Notification::parse(r#"{"Type":"Notification","Subject":"x"}"#),
            Err(EventError::SnsWithoutMessage)
        ));
        assert!(matches!(
            Notification::parse(r#"{"Records":[{"eventVersion":"2.1","eventTime":"x","s3":{}}]}"#),
            Err(EventError::Malformed { .. })
        ));
        let no_key = REAL_S3.replace(r#""key":"medical/HappyFace.jpg","#, "");
        assert!(matches!(
            Notification::parse(&no_key),
            Err(EventError::Missing {
                field: "s3.object.key",
                ..
            })
        ));
        let bad_key = REAL_S3.replace("medical/HappyFace.jpg", "medical/%FF.jpg");
        assert!(matches!(
            Notification::parse(&bad_key),
            Err(EventError::BadKey { .. })
        ));
        let negative = REAL_S3.replace(r#""size":1024"#, r#""size":-1"#);
        assert!(matches!(
            Notification::parse(&negative),
            Err(EventError::BadSize { .. })
        ));
    }

    /// The `Object Created` sample from AWS's "EventBridge event message structure"
    /// documentation, with a key that needs decoding.
    const EVENTBRIDGE_CREATED: &str = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103",
      "detail-type":"Object Created","source":"aws.s3","account":"111122223333",
      "time":"2021-11-12T00:00:00Z","region":"ca-central-1",
      "resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],
      "detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},
        "object":{"key":"medical/a+b%2B0%C3%A9.dcm","size":5,"etag":"b1946ac92492d2347c6235b4d2611184",
          "version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"617f08299329d189"},
        "request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","source-ip-address":"1.2.3.4",
        "reason":"PutObject"}}"#;

    /// The `Object Deleted` sample from the same page (DeleteObject on a versioned bucket).
    const EVENTBRIDGE_DELETED: &str = r#"{"version":"0","id":"2ee9cc15-d022-99ea-1fb8-1b1bac4850f9",
      "detail-type":"Object Deleted","source":"aws.s3","account":"111122223333",
      "time":"2021-11-12T00:00:00Z","region":"ca-central-1",
      "resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],
      "detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},
        "object":{"key":"example-key","etag":"d41d8cd98f00b204e9800998ecf8427e",
          "version-id":"1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF","sequencer":"617f0837b476e463"},
        "request-id":"0BH729840619AG5K","requester":"123456789012","source-ip-address":"1.2.3.4",
        "reason":"DeleteObject","deletion-type":"Delete Marker Created"}}"#;

    #[test]
    fn an_eventbridge_object_created_is_the_same_event_as_a_notification() {
        let event = only_record(EVENTBRIDGE_CREATED);
        assert_eq!(event.kind, EventKind::Created);
        assert_eq!(event.name, "ObjectCreated:Put");
        assert_eq!(event.bucket, "amzn-s3-demo-bucket1");
        assert_eq!(event.key, "medical/a b+0é.dcm");
        assert_eq!(event.size, Some(5));
        assert_eq!(
            event.etag.as_deref(),
            Some("b1946ac92492d2347c6235b4d2611184")
        );
        assert_eq!(
            event.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(event.sequencer.as_deref(), Some("617f08299329d189"));
        assert_eq!(event.time.to_rfc3339(), "2021-11-12T00:00:00+00:00");
    }

    #[test]
    fn eventbridge_reasons_and_deletions_get_notification_names() {
        let deleted = only_record(EVENTBRIDGE_DELETED);
        assert_eq!(deleted.kind, EventKind::Removed);
        assert_eq!(deleted.name, "ObjectRemoved:DeleteMarkerCreated");
        assert_eq!(deleted.size, None);
        assert_eq!(deleted.sequencer.as_deref(), Some("617f0837b476e463"));
        for (detail_type, reason, deletion, name, kind) in [
            (
                "Object Created",
                "POST Object",
                "",
                "ObjectCreated:Post",
                EventKind::Created,
            ),
            (
                "Object Created",
                "CopyObject",
                "",
                "ObjectCreated:Copy",
                EventKind::Created,
            ),
            (
                "Object Created",
                "CompleteMultipartUpload",
                "",
                "ObjectCreated:CompleteMultipartUpload",
                EventKind::Created,
            ),
            (
                "Object Deleted",
                "DeleteObject",
                "Permanently Deleted",
                "ObjectRemoved:Delete",
                EventKind::Removed,
            ),
            (
                "Object Deleted",
                "Lifecycle Expiration",
                "Permanently Deleted",
                "LifecycleExpiration:Delete",
                EventKind::Removed,
            ),
            (
                "Object Deleted",
                "Lifecycle Expiration",
                "Delete Marker Created",
                "LifecycleExpiration:DeleteMarkerCreated",
                EventKind::Removed,
            ),
            (
                "Object Tags Added",
                "PutObjectTagging",
                "",
                "Object Tags Added",
                EventKind::Other,
            ),
            (
                "Object Restore Completed",
                "",
                "",
                "Object Restore Completed",
                EventKind::Other,
            ),
        ] {
            let mut value: Value = serde_json::from_str(EVENTBRIDGE_DELETED).unwrap();
            value["detail-type"] = detail_type.into();
            value["detail"]["reason"] = reason.into();
            value["detail"]["deletion-type"] = deletion.into();
            let event = only_record(&value.to_string());
            assert_eq!(
                (event.name.as_str(), event.kind),
                (name, kind),
                "{detail_type} {reason}"
            );
        }
    }

    #[test]
    fn unwraps_an_eventbridge_event_inside_sns() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "Message": EVENTBRIDGE_CREATED,
        });
        assert_eq!(
            only_record(&envelope.to_string()),
            only_record(EVENTBRIDGE_CREATED)
        );
    }

    #[test]
    fn refuses_eventbridge_envelopes_that_are_not_s3_object_events() {
        let other_source = EVENTBRIDGE_CREATED.replace("\"aws.s3\"", "\"aws.ec2\"");
        assert!(matches!(
            Notification::parse(&other_source),
            Err(EventError::UnknownShape)
        ));
        let no_key = EVENTBRIDGE_CREATED.replace("\"key\":\"medical/a+b%2B0%C3%A9.dcm\",", "");
        assert!(matches!(
            Notification::parse(&no_key),
            Err(EventError::Missing {
                field: "detail.object.key",
                ..
            })
        ));
        let no_bucket = EVENTBRIDGE_CREATED.replace("\"name\":\"amzn-s3-demo-bucket1\"", "");
        assert!(matches!(
            Notification::parse(&no_bucket),
            Err(EventError::Missing {
                field: "detail.bucket.name",
                ..
            })
        ));
        let negative = EVENTBRIDGE_CREATED.replace("\"size\":5", "\"size\":-5");
        assert!(matches!(
            Notification::parse(&negative),
            Err(EventError::BadSize { .. })
        ));
        let bad_key = EVENTBRIDGE_CREATED.replace("%C3%A9", "%FF");
        assert!(matches!(
            Notification::parse(&bad_key),
            Err(EventError::BadKey { .. })
        ));
        let bad_time = EVENTBRIDGE_CREATED.replace("2021-11-12T00:00:00Z", "yesterday");
        assert!(matches!(
            Notification::parse(&bad_time),
            Err(EventError::Malformed { .. })
        ));
    }

    #[test]
    fn keeps_explicit_timezones() {
        let body = MOTO.replace("2026-11-24T21:51:41.581265", "2026-11-24T22:51:41+01:00");
        assert_eq!(
            only_record(&body).time.to_rfc3339(),
            "2026-11-24T21:51:41+00:00"
        );
    }
}
