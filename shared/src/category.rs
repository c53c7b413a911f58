//! Document categories, decided by the key's first path segment, and what each may contain.

use std::fmt;

/// The category a key belongs to. The upload path chooses the prefix; anything outside the known
/// prefixes is `Other`, which accepts only the most common, inert document types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    Medical,
    Images,
    Reports,
    Admin,
    Prescriptions,
    Referrals,
    Other,
}

pub const DICOM: &str = "application/dicom";
pub const PDF: &str = "application/pdf";
pub const JPEG: &str = "image/jpeg";
pub const PNG: &str = "image/png";
pub const TIFF: &str = "image/tiff";
pub const GIF: &str = "image/gif";
pub const WEBP: &str = "image/webp";
pub const TEXT: &str = "text/plain";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

impl Category {
    /// The category of a decoded object key.
    pub fn of_key(key: &str) -> Category {
        match key.split_once('/').map(|(prefix, _)| prefix) {
            Some("medical") => Category::Medical,
            Some("images") => Category::Images,
            Some("reports") => Category::Reports,
            Some("admin") => Category::Admin,
            Some("prescriptions") => Category::Prescriptions,
            Some("referrals") => Category::Referrals,
            _ => Category::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Medical => "medical",
            Category::Images => "images",
            Category::Reports => "reports",
            Category::Admin => "admin",
            Category::Prescriptions => "prescriptions",
            Category::Referrals => "referrals",
            Category::Other => "other",
        }
    }

    /// The verified content types this category accepts. Kept in step with the table in README.md.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Category::Medical => &[DICOM, PDF, JPEG, PNG, TIFF, TEXT],
            Category::Images => &[JPEG, PNG, TIFF, GIF, WEBP, DICOM],
            Category::Reports => &[PDF, DOCX, XLSX, TEXT],
            Category::Admin => &[PDF, DOCX, XLSX, PPTX, TEXT, JPEG, PNG],
            Category::Prescriptions => &[PDF, JPEG, PNG, TIFF],
            Category::Referrals => &[PDF, DOCX, TEXT, JPEG, PNG, TIFF, DICOM],
            Category::Other => &[PDF, JPEG, PNG, TEXT],
        }
    }

    pub fn allows(self, content_type: &str) -> bool {
        self.allowed().contains(&content_type)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_comes_from_the_first_segment_only() {
        assert_eq!(Category::of_key("medical/2026/a.dcm"), Category::Medical);
        assert_eq!(Category::of_key("referrals/x.pdf"), Category::Referrals);
        assert_eq!(
            Category::of_key("prescriptions/x.pdf"),
            Category::Prescriptions
        );
        assert_eq!(Category::of_key("x/medical/a.dcm"), Category::Other);
        assert_eq!(Category::of_key("medical"), Category::Other);
        assert_eq!(Category::of_key("Medical/a.dcm"), Category::Other);
        assert_eq!(Category::of_key(""), Category::Other);
    }

    #[test]
    fn allow_lists_keep_dicom_out_of_paperwork() {
        assert!(Category::Medical.allows(DICOM));
        assert!(Category::Images.allows(WEBP));
        assert!(!Category::Admin.allows(DICOM));
        assert!(!Category::Prescriptions.allows(TEXT));
        assert!(!Category::Other.allows(DICOM));
        assert!(!Category::Medical.allows("application/zip"));
    }
}
