//! Processing one S3 event, top to bottom: decide from metadata, open, stream through the
//! readers, decide from their verdicts, record.

pub mod fetch;
pub mod parts;
pub mod ranged;
pub mod readers;
pub mod tag;
pub mod tee;

use std::time::Instant;

use docworker_shared::gate::{self, Gate, NotScanned, ObjectStatus, ScanVerdict};
use docworker_shared::integrity::Plan;
use docworker_shared::parts::PartsDigest;
use docworker_shared::verify::{self, Digested, Integrity};
use docworker_shared::{
    Applied, Category, DocumentStore, EventKind, Finalized, ObjectEvent, ObjectFacts, Outcome,
    Rejection, Seen, Trail, category,
};
use tracing::{Span, debug, info};

use self::fetch::{Fetched, Head, Opened, Source};
use self::readers::{Known, KnownParts, Verdicts};
use self::tee::Verdict;
use crate::error::{Class, ProcessError, ReaderError};
use crate::observe::{events, names};
use crate::scanner::Scanner;

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
    /// `None` when `DOCWORKER_CLAMD_ADDR` is unset: rows then say `scan: not configured`.
    pub scanner: Option<Scanner>,
    /// Which objects are read by ranges, and the limits all ranged reads share.
    pub ranges: ranged::Ranges,
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
            let gated = self.unscanned(&head);
            return self
                .reject(&facts(event, &head), refused, gated, trail)
                .await;
        }

        // 2. Open the object (one GetObject, read on by ranges if large and slow) and check what its
        // headers already tell. Dropping the body of a refused object closes its connections
        // before its bytes are read.
        let asked = Instant::now();
        let Opened { head, mut body } =
            match fetch::open(&self.s3, event, &self.ranges).await?.found() {
                Ok(opened) => opened,
                Err(verdict) => return Ok(verdict),
            };
        let facts = facts(event, &head);
        let fetch_ms = asked.elapsed().as_millis() as u64;
        Span::current().record("size", head.content_length);
        if let Some(rejection) = self.refused_by_headers(&head) {
            drop(body);
            let gated = self.unscanned(&head);
            return self
                .reject(&facts, Refused::bare(rejection), gated, trail)
                .await;
        }

        // 3. Stream the body once through the readers its prefix and its plan call for.
        let plan = match Plan::new(&head.offered) {
            Ok(plan) => plan,
            Err(rejection) => {
                drop(body);
                let gated = self.unscanned(&head);
                return self
                    .reject(&facts, Refused::bare(rejection), gated, trail)
                    .await;
            }
        };
        let known = Known {
            content_length: head.content_length,
            etag_md5: plan.etag_md5(),
            parts: self.part_layout(event, &head, &plan, &mut body).await?,
            full_checksum: match body {
                Source::Ranges(_) => head.full_checksum.clone(),
                Source::Whole(_) => None,
            },
            max_dicom_header_bytes: self.max_dicom_header_bytes,
            scanner: self.scanner.as_ref(),
        };
        let reading = Instant::now();
        let streamed = tee::stream(&event.bucket, &event.key, body, |prefix, list| {
            readers::attach(&known, prefix, list)
        })
        .await;
        // A range of a ranged read may be answered 412 or 404 midway: the object changed or
        // went, as the single GET's answer would have said before its first byte.
        let (mut verdicts, streamed) = match Fetched::of(streamed)?.found() {
            Ok(streamed) => streamed,
            Err(answer) => return Ok(answer),
        };
        // Time to S3's answer apart from time reading the body: a slow source and a slow worker
        // look alike in the object's total.
        debug!(
            fetch_ms,
            stream_ms = reading.elapsed().as_millis() as u64,
            "body read"
        );

        // 4. Decide from the verdicts: integrity, then type, then structure and DICOM header;
        // then the gate, where malware takes precedence over everything else.
        let parts = verdicts.parts.take();
        let parts = match self
            .confirm_parts(event, &plan, &known, parts)
            .await?
            .found()
        {
            Ok(parts) => parts,
            Err(verdict) => return Ok(verdict),
        };
        let allow_unscanned = self
            .scanner
            .as_ref()
            .is_some_and(|s| s.config().allow_unscanned);
        let (decided, scan) = decide(
            &facts,
            &head,
            &plan,
            parts,
            verdicts,
            &streamed.prefix,
            allow_unscanned,
        )?;
        let gated = Gated {
            scan: Some(&scan),
            tags: head.tags,
        };
        let finalized = match decided {
            Ok(finalized) => finalized,
            Err(refused) => return self.reject(&facts, refused, gated, trail).await,
        };

        // 5. Record, then tag the object with its status.
        self.record(event, &facts, finalized, gated, trail).await
    }

    /// What the gate records for an object refused before any byte was read: not scanned
    /// (`None`) when there is a scanner, `not configured` when there is none.
    fn unscanned(&self, head: &Head) -> Gated<'static> {
        const NOT_CONFIGURED: &ScanVerdict = &ScanVerdict::NotConfigured;
        Gated {
            scan: self.scanner.is_none().then_some(NOT_CONFIGURED),
            tags: head.tags,
        }
    }

    /// Tags the version the row describes with its status, once the row committed. A stale
    /// write is not tagged: the row holds a newer event's outcome, whose own processing tags.
    async fn tag(
        &self,
        facts: &ObjectFacts,
        outcome: &Outcome,
        gated: Gated<'_>,
    ) -> Result<(), ProcessError> {
        let Some(status) = ObjectStatus::of(outcome.status(), gated.scan) else {
            return Ok(());
        };
        let target = tag::Target {
            bucket: &facts.bucket,
            key: &facts.key,
            version_id: facts.version_id.as_deref(),
            tags: gated.tags,
        };
        tag::tag(&self.s3, target, status, gated.scan)
            .await
            .map(drop)
    }

    /// The part layout, when the plan checks parts: assumed from the first and the last part
    /// when one part size explains them (two requests), else learnt part by part. That may take
    /// many requests (up to 10,000 parts, 8 at a time), so ranges asked for ahead of the `body`
    /// give their places in the window back first rather than hold them from other objects.
    async fn part_layout(
        &self,
        event: &ObjectEvent,
        head: &Head,
        plan: &Plan,
        body: &mut Source,
    ) -> Result<Option<KnownParts>, ProcessError> {
        let Some((check, count)) = plan.part_check() else {
            return Ok(None);
        };
        let object = part_object(event, head.content_length, count);
        let failed = |e| fetch::s3_error("HeadObject", &event.bucket, &event.key, e);
        if let Some(layout) = parts::assume_uniform(&self.s3, object)
            .await
            .map_err(failed)?
        {
            let assumed = true;
            return Ok(Some(KnownParts {
                layout,
                check,
                assumed,
            }));
        }
        body.release_ranges();
        let listed = parts::every_part(&self.s3, object).await.map_err(failed)?;
        Ok(listed.map(|layout| KnownParts {
            layout,
            check,
            assumed: false,
        }))
    }

    /// The part digest to decide by. When the layout was assumed and the digest disagrees with
    /// S3's value, every part's length is learnt: the same cut means the bytes are wrong; another
    /// cut (uneven parts whose first and last fit one size: rare) means one more read of the
    /// object, with only the part digests on it, before deciding.
    async fn confirm_parts(
        &self,
        event: &ObjectEvent,
        plan: &Plan,
        known: &Known<'_>,
        verdict: Option<Verdict<PartsDigest>>,
    ) -> Result<Fetched<Option<PartsDigest>>, ProcessError> {
        let Some(digest) = verdict.map(Verdict::get).transpose()? else {
            return Ok(Fetched::Found(None));
        };
        let Some(assumed) = known.parts.as_ref().filter(|p| p.assumed) else {
            return Ok(Fetched::Found(Some(digest)));
        };
        if plan.parts_match(&digest) {
            return Ok(Fetched::Found(Some(digest)));
        }
        let object = part_object(event, known.content_length, assumed.layout.count());
        let listed = parts::every_part(&self.s3, object)
            .await
            .map_err(|e| fetch::s3_error("HeadObject", &event.bucket, &event.key, e))?;
        let Some(layout) = listed.filter(|listed| !listed.same_cut(&assumed.layout)) else {
            return Ok(Fetched::Found(Some(digest)));
        };
        info!("part layout was not uniform: reading the object again");
        let body = match fetch::open(&self.s3, event, &self.ranges).await?.found() {
            Ok(Opened { body, .. }) => body,
            Err(verdict) => return Ok(verdict),
        };
        let again = Known {
            parts: Some(KnownParts {
                layout,
                check: assumed.check,
                assumed: false,
            }),
            ..known.clone()
        };
        let streamed = tee::stream(&event.bucket, &event.key, body, |_, list| {
            readers::parts::attach(&again, list)
        })
        .await;
        let (verdict, _) = match Fetched::of(streamed)?.found() {
            Ok(streamed) => streamed,
            Err(answer) => return Ok(answer),
        };
        Ok(Fetched::Found(verdict.map(Verdict::get).transpose()?))
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
        gated: Gated<'_>,
        trail: Trail<'_>,
    ) -> Result<Fetched<Processed>, ProcessError> {
        let content_type = finalized.content_type;
        let integrity = finalized.integrity;
        let digest = finalized.sha256.clone();
        let outcome = Outcome::Finalized(Box::new(finalized));
        let applied = match self
            .store
            .record_scanned(facts, &outcome, gated.scan, self.processor_version, trail)
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
                return self.reject(facts, refused, gated, trail).await;
            }
        };
        if applied == Applied::Written {
            self.tag(facts, &outcome, gated).await?;
        }
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
        gated: Gated<'_>,
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
            .record_scanned(facts, &outcome, gated.scan, self.processor_version, trail)
            .await?;
        if applied == Applied::Written {
            self.tag(facts, &outcome, gated).await?;
        }
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

/// What the gate writes beside the row: the scan verdict (`None`: refused before any byte was
/// read, so not scanned) for the row and the tags, and how many tags S3 said the version has.
#[derive(Debug, Clone, Copy)]
struct Gated<'a> {
    scan: Option<&'a ScanVerdict>,
    tags: Option<u32>,
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

/// Which object the part lengths are asked of: the version read when the bucket is versioned.
fn part_object(event: &ObjectEvent, total: u64, parts: u32) -> parts::Object<'_> {
    parts::Object {
        bucket: &event.bucket,
        key: &event.key,
        version_id: event.version_id.as_deref(),
        total,
        parts,
    }
}

/// The verdict on a streamed object: the checks' ([`check`]), then the gate's on the scan
/// ([`gate::decide`]): malware rejects the object whatever the checks found, and an object
/// that could not be scanned is refused or retried unless unscanned objects may be finalized.
/// Returns the scan verdict beside it, for the row and the tags. `Err` when a reader had no
/// verdict, or the scan is to be retried: a scanner that did not answer is an outage (every
/// object needs it, so the consumer stops receiving until clamd answers), one that took too
/// long a retryable failure of this object.
fn decide(
    facts: &ObjectFacts,
    head: &Head,
    plan: &Plan,
    parts: Option<PartsDigest>,
    verdicts: Verdicts,
    prefix: &[u8],
    allow_unscanned: bool,
) -> Result<(Result<Finalized, Refused>, ScanVerdict), ProcessError> {
    let scan = verdicts.scan.get()?;
    let detected = verdicts.detected;
    let bytes = Against {
        plan,
        parts,
        digests: verdicts.digests,
    };
    let checked = check(
        facts,
        head,
        bytes,
        detected,
        verdicts.tail,
        verdicts.dicom,
        prefix,
    )?;
    let decided = match gate::decide(&scan, checked.is_err(), allow_unscanned) {
        Gate::Proceed => checked,
        Gate::Reject(rejection) => Err(Refused {
            rejection,
            content_type: detected,
            sha256: match checked {
                Ok(finalized) => Some(finalized.sha256),
                Err(refused) => refused.sha256,
            },
        }),
        Gate::Retry(reason) => {
            let class = match reason {
                NotScanned::Unavailable => Class::Outage,
                NotScanned::Timeout | NotScanned::TooLarge => Class::Retryable,
            };
            let why = format!("not scanned ({reason}): unscanned objects are not finalized");
            return Err(ReaderError::new("scan", class, why).into());
        }
    };
    Ok((decided, scan))
}

/// The verdict on a streamed object, from its readers' verdicts: integrity first (a body that is
/// not what S3 stored says nothing reliable about its type), then the type, then its structure
/// and DICOM header. `Err` only when a reader had no verdict.
/// What the bytes are checked against (the plan, and S3's part layout when it checks parts),
/// beside what the readers computed from them.
struct Against<'a> {
    plan: &'a Plan,
    parts: Option<PartsDigest>,
    digests: Verdict<docworker_shared::verify::Digests>,
}

fn check(
    facts: &ObjectFacts,
    head: &Head,
    bytes: Against<'_>,
    detected: Option<&'static str>,
    tail: Option<Verdict<Vec<u8>>>,
    dicom: Option<Verdict<Result<docworker_shared::DicomHeader, Rejection>>>,
    prefix: &[u8],
) -> Result<Result<Finalized, Refused>, ProcessError> {
    let digests = bytes.digests.get()?;
    let Digested {
        sha256, integrity, ..
    } = match digests.conclude(head.content_length, bytes.plan, bytes.parts.as_ref()) {
        Ok(digested) => digested,
        Err(rejection) => return Ok(Err(Refused::bare(rejection))),
    };
    let tail = tail.map(Verdict::get).transpose()?;
    let dicom = dicom.map(Verdict::get).transpose()?;
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
