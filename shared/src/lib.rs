//! docworker's domain, free of AWS clients so that it can be tested (and fuzzed) on plain bytes:
//! what an S3 notification says, what an object really is, whether it may be accepted, what its
//! DICOM header holds, and how the outcome is written to the `documents` table.

pub mod category;
pub mod dicom;
pub mod document;
pub mod event;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod gate;
pub mod integrity;
pub mod md5;
pub mod parts;
pub mod reconcile;
pub mod reject;
pub mod sniff;
pub mod store;
pub mod verify;
pub mod zip_directory;

pub use category::Category;
pub use dicom::DicomHeader;
pub use document::{Document, Finalized, ObjectFacts, Outcome, Status, UploadMetadata};
pub use event::{EventError, EventKind, Notification, ObjectEvent};
pub use reject::Rejection;
pub use store::{Applied, DocumentStore, MIGRATOR, RowState, Seen, Trail};
