//! Processing one S3 event, top to bottom: decide from metadata, open, stream through the
//! readers, decide from their verdicts, record.

pub mod fetch;
pub mod readers;
pub mod tee;

use std::time::Instant;

use docworker_shared::verify::{self, Digested, Integrity};
use docworker_shared::{
    Applied, Category, DocumentStore, EventKind, Finalized, ObjectEvent, ObjectFacts, Outcome,
    Rejection, Seen, Trail, category,
};
use tracing::{Span, debug, info};

use self::fetch::{Fetched, Head, Opened};
use self::readers::{Known, Verdicts};
use self::tee::Verdict;
use crate::error::ProcessError;
use crate::observe::{events, names};

/// What became of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    Finalized {
        content_type: &'static str,
        integrity: Integrity,
    },
    Rejected(Rejection),
    Deleted,
    /// A newer event for the same key was already applied; this one changed nothing.
    Stale,
    /// The event does not change the object's bytes (restore, tagging, ACL…).
    Ignored,
    /// The key holds another version than this event is about (overwritten since, or a removal
    /// of a version that is not current); the row was left alone.
    Superseded,
    /// The object was deleted before its event was processed, and nothing else is current
    /// under its key: the row is marked `deleted`.
    Gone,
}

impl Processed {
    /// Every [`label`](Self::label), so that metrics start at 0 for each outcome. Keep in step
    /// with `label`.
    pub const LABELS: &'static [&'static str] = &[
        "finalized",
        "rejected",
        "deleted",
        "stale",
        "ignored",
        "superseded",
        "gone",
    ];

    pub fn label(&self) -> &'static str {
        match self {
            Processed::Finalized { .. } => "finalized",
            Processed::Rejected(_) => "rejected",
            Processed::Deleted => "deleted",
            Processed::Stale => "stale",
            Processed::Ignored => "ignored",
            Processed::Superseded => "superseded",
            Processed::Gone => "gone",
        }
    }

    /// Whether the store already appended this outcome to the audit trail with its write.
    pub fn audited(&self) -> bool {
        !matches!(self, Processed::Ignored | Processed::Superseded)
    }
}

/// Everything processing needs, shared by all in-flight objects.
#[derive(Clone)]
pub struct Pipeline {
    pub s3: aws_sdk_s3::Client,
    pub store: DocumentStore,
    pub max_object_bytes: u64,
    pub max_dicom_header_bytes: u64,
    pub processor_version: &'static str,
}

impl Pipeline {
    /// Processes one event. Outcomes that write a row also append `trail` to the audit trail in
    /// the same statement ([`Processed::audited`]).
    pub async fn process(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Processed, ProcessError> {
        match self.process_object(event, trail).await? {
            Fetched::Found(processed) => Ok(processed),
            Fetched::Superseded(answer) => {
                info!(error = %answer, "superseded: the key holds newer bytes than this event announced");
                Ok(Processed::Superseded)
            }
            Fetched::Gone(answer) => {
                info!(error = %answer, "gone: the object was deleted before its event was processed");
                self.removed(event, trail, Processed::Gone).await
            }
        }
    }

    async fn process_object(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Fetched<Processed>, ProcessError> {
        match event.kind {
            EventKind::Other => return Ok(Fetched::Found(Processed::Ignored)),
            EventKind::Removed => {
                return Ok(Fetched::Found(
                    self.removed(event, trail, Processed::Deleted).await?,
                ));
            }
            EventKind::Created => {}
        }
        // Without a sequencer (a replay, an emulator) nothing orders this event against the
        // row's: on a versioned bucket only the key's current version may be written, so an old
        // version read again never replaces a newer row. The current version's own event (or
        // its replay) settles the row instead.
        if event.sequencer.is_none()
            && let Some(version) = &event.version_id
        {
            let row = self.store.row_state(&event.bucket, &event.key).await?;
            let current = fetch::current(&self.s3, event).await?;
            if current.as_ref().and_then(|c| c.version_id.as_ref()) != Some(version) {
                info!(
                    "superseded: the event's version is not the key's current one, and the event has no sequencer to order it by"
                );
                return Ok(Fetched::Found(Processed::Superseded));
            }
            return self.created(event, seen(trail, row.as_ref())).await;
        }
        self.created(event, trail).await
    }

    /// Settles a removal, or an object found gone, by what the key holds now rather than by the
    /// event alone. On a versioned bucket a removal may be of a non-current version (`DELETE
    /// ?versionId=`), a delete marker may already be covered by a newer upload, and removing the
    /// current version or a delete marker makes an older version current again without any
    /// `ObjectCreated` event. So: nothing current (no key, or a delete marker on top) marks the
    /// row `deleted`; a current version the row already describes leaves it alone; another
    /// current version is processed in place of the removed one. On an unversioned bucket a
    /// live key means it was written again after the removal, and that upload's event follows.
    async fn removed(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
        removal: Processed,
    ) -> Result<Processed, ProcessError> {
        let row = self.store.row_state(&event.bucket, &event.key).await?;
        let trail = seen(trail, row.as_ref());
        let Some(current) = fetch::current(&self.s3, event).await? else {
            let facts = facts(event, &Head::default());
            let applied = self
                .store
                .mark_deleted(&facts, self.processor_version, trail, removal.label())
                .await?;
            return Ok(settled(applied, removal));
        };
        let Some(version) = current.version_id else {
            info!("superseded: the key was written again after this removal");
            return Ok(Processed::Superseded);
        };
        if row.is_some_and(|row| {
            row.version_id.as_ref() == Some(&version)
                && matches!(row.status.as_str(), "finalized" | "rejected")
        }) {
            info!("superseded: the removal left the key's current version, which the row holds");
            return Ok(Processed::Superseded);
        }
        info!(
            "the key's current version is not the row's: processing it in place of the removed one"
        );
        let now_current = ObjectEvent {
            kind: EventKind::Created,
            name: event.name.clone(),
            bucket: event.bucket.clone(),
            key: event.key.clone(),
            size: Some(current.size),
            etag: current.etag,
            version_id: Some(version),
            // The row then reflects the key as of this removal: older events stay stale.
            sequencer: event.sequencer.clone(),
            time: current.last_modified.unwrap_or(event.time),
        };
        match self.created(&now_current, trail).await? {
            Fetched::Found(processed) => Ok(processed),
            Fetched::Gone(answer) | Fetched::Superseded(answer) => {
                info!(error = %answer, "superseded: the key changed again while its current version was read");
                Ok(Processed::Superseded)
            }
        }
    }

    /// Processes the object an `ObjectCreated` event announced.
    async fn created(
        &self,
        event: &ObjectEvent,
        trail: Trail<'_>,
    ) -> Result<Fetched<Processed>, ProcessError> {
        // 1. Decide from metadata: too large by the event's own account is never downloaded.
        if let Some(size) = event.size.filter(|size| *size > self.max_object_bytes) {
            let head = match fetch::head(&self.s3, event).await?.found() {
                Ok(head) => head,
                Err(verdict) => return Ok(verdict),
            };
            let size = head.content_length.max(size);
            Span::current().record("size", size);
            let rejection = Rejection::TooLarge {
                size,
                max: self.max_object_bytes,
            };
            let refused = Refused::bare(rejection);
            return self.reject(&facts(event, &head), refused, trail).await;
        }

        // 2. Open the one GetObject and check what its headers already tell. Dropping the body
        // of a refused object closes the connection before its bytes are read.
        let asked = Instant::now();
        let Opened { head, body } = match fetch::open(&self.s3, event).await?.found() {
            Ok(opened) => opened,
            Err(verdict) => return Ok(verdict),
        };
        let facts = facts(event, &head);
        let fetch_ms = asked.elapsed().as_millis() as u64;
        Span::current().record("size", head.content_length);
        if let Some(rejection) = self.refused_by_headers(&head) {
            return self.reject(&facts, Refused::bare(rejection), trail).await;
        }

        // 3. Stream the body once through the readers its prefix calls for.
        let known = Known {
            content_length: head.content_length,
            etag_md5: match (head.checksum, head.etag_is_md5_capable, &head.etag) {
                (None, true, Some(etag)) => verify::plain_md5_etag(etag),
                _ => None,
            },
            max_dicom_header_bytes: self.max_dicom_header_bytes,
        };
        let reading = Instant::now();
        let (verdicts, streamed) = tee::stream(&event.bucket, &event.key, body, |prefix, list| {
            readers::attach(&known, prefix, list)
        })
        .await?;
        // Time to S3's answer apart from time reading the body: a slow source and a slow worker
        // look alike in the object's total.
        debug!(
            fetch_ms,
            stream_ms = reading.elapsed().as_millis() as u64,
            "body read"
        );

        // 4. Decide from the verdicts: integrity, then type, then structure and DICOM header.
        let finalized = match decide(&facts, &head, verdicts, &streamed.prefix)? {
            Ok(finalized) => finalized,
            Err(refused) => return self.reject(&facts, refused, trail).await,
        };

        // 5. Record.
        self.record(event, &facts, finalized, trail).await
    }

    /// Rejections S3's response headers already justify, before any byte is read.
    fn refused_by_headers(&self, head: &Head) -> Option<Rejection> {
        if head.content_length > self.max_object_bytes {
            return Some(Rejection::TooLarge {
                size: head.content_length,
                max: self.max_object_bytes,
            });
        }
        (head.content_length == 0).then_some(Rejection::Empty)
    }

    /// Writes the finalized row. A value PostgreSQL refuses (too long for its index, outside a
    /// CHECK, not storable as text) is a verdict on the file: recorded as a rejection, which
    /// writes none of the extracted values.
    async fn record(
        &self,
        event: &ObjectEvent,
        facts: &ObjectFacts,
        finalized: Finalized,
        trail: Trail<'_>,
    ) -> Result<Fetched<Processed>, ProcessError> {
        let content_type = finalized.content_type;
        let integrity = finalized.integrity;
        let digest = finalized.sha256.clone();
        let outcome = Outcome::Finalized(Box::new(finalized));
        let applied = match self
            .store
            .record(facts, &outcome, self.processor_version, trail)
            .await
            .map_err(ProcessError::from)
        {
            Ok(applied) => applied,
            Err(e) => {
                let Some(rejection) = e.refusal() else {
                    return Err(e);
                };
                let refused = Refused {
                    rejection,
                    content_type: Some(content_type),
                    sha256: Some(digest),
                };
                return self.reject(facts, refused, trail).await;
            }
        };
        let lag = (chrono::Utc::now() - event.time)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(names::LAG_SECONDS).record(lag.as_secs_f64());
        Ok(Fetched::Found(settled(
            applied,
            Processed::Finalized {
                content_type,
                integrity,
            },
        )))
    }

    async fn reject(
        &self,
        facts: &ObjectFacts,
        refused: Refused,
        trail: Trail<'_>,
    ) -> Result<Fetched<Processed>, ProcessError> {
        let Refused {
            rejection,
            content_type,
            sha256,
        } = refused;
        events::Rejected(&rejection).emit();
        let outcome = Outcome::Rejected {
            reason: rejection.clone(),
            content_type,
            sha256,
        };
        let applied = self
            .store
            .record(facts, &outcome, self.processor_version, trail)
            .await?;
        Ok(Fetched::Found(settled(
            applied,
            Processed::Rejected(rejection),
        )))
    }
}

/// The row's facts: the event's identity, refined by what S3 returned for the object.
fn facts(event: &ObjectEvent, head: &Head) -> ObjectFacts {
    ObjectFacts {
        bucket: event.bucket.clone(),
        key: event.key.clone(),
        category: Category::of_key(&event.key),
        etag: head
            .etag
            .as_deref()
            .or(event.etag.as_deref())
            .map(|etag| etag.trim_matches('"').to_owned()),
        version_id: head.version_id.clone().or_else(|| event.version_id.clone()),
        sequencer: event.sequencer.clone(),
        uploaded_at: event.time,
        declared_content_type: head.content_type.clone(),
        file_size: (head.content_length > 0)
            .then_some(head.content_length)
            .or(event.size),
        upload: head.upload.clone(),
    }
}

/// The trail of a write decided from S3's answer about the key, read after `row` was: the store
/// applies it only if the row has not changed since.
fn seen<'a>(trail: Trail<'a>, row: Option<&docworker_shared::RowState>) -> Trail<'a> {
    Trail {
        seen: Some(Seen {
            updated_at: row.map(|row| row.updated_at),
        }),
        ..trail
    }
}

fn settled(applied: Applied, processed: Processed) -> Processed {
    match applied {
        Applied::Written => processed,
        Applied::Stale => Processed::Stale,
    }
}

/// A rejection with what was learned before it, kept on its row.
struct Refused {
    rejection: Rejection,
    content_type: Option<&'static str>,
    sha256: Option<String>,
}

impl Refused {
    fn bare(rejection: Rejection) -> Refused {
        Refused {
            rejection,
            content_type: None,
            sha256: None,
        }
    }
}

/// The verdict on a streamed object, from its readers' verdicts: integrity first (a body that is
/// not what S3 stored says nothing reliable about its type), then the type, then its structure
/// and DICOM header. `Err` only when a reader had no verdict.
fn decide(
    facts: &ObjectFacts,
    head: &Head,
    verdicts: Verdicts,
    prefix: &[u8],
) -> Result<Result<Finalized, Refused>, ProcessError> {
    let etag = head.etag.as_deref().unwrap_or_default();
    let digests = verdicts.digests.get()?;
    let Digested {
        sha256, integrity, ..
    } = match digests.finish(head.content_length, head.checksum, etag) {
        Ok(digested) => digested,
        Err(rejection) => return Ok(Err(Refused::bare(rejection))),
    };
    let detected = verdicts.detected;
    let tail = verdicts.tail.map(Verdict::get).transpose()?;
    let dicom = verdicts.dicom.map(Verdict::get).transpose()?;
    let refused = |rejection| {
        Ok(Err(Refused {
            rejection,
            content_type: detected,
            sha256: Some(sha256.clone()),
        }))
    };
    let declared = head.content_type.as_deref();
    let content_type = match verify::check_content(facts.category, &facts.key, declared, detected) {
        Ok(content_type) => content_type,
        Err(rejection) => return refused(rejection),
    };
    let tail = tail.unwrap_or_default();
    if let Err(rejection) =
        verify::check_structure(content_type, prefix, &tail, head.content_length)
    {
        return refused(rejection);
    }
    let dicom = match (content_type, dicom) {
        (category::DICOM, Some(Ok(header))) => Some(header),
        (category::DICOM, Some(Err(rejection))) => return refused(rejection),
        _ => None,
    };
    Ok(Ok(Finalized {
        content_type,
        sha256,
        integrity,
        dicom,
    }))
}
