//! The JSON text: written under the header's budget and the JSON's cap, strings escaped as
//! RFC 8259 requires.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dicom_core::Tag;

use crate::Rejection;
use crate::dicom::{Budget, Unreadable, max_json_bytes};

/// The JSON text being written, and whether the next member or element needs a comma first.
///
/// Every byte goes through [`Json::grow`], which charges the text's capacity to the budget and
/// holds it under the JSON's cap, so an element that expands (an empty value becomes `null,`, a
/// control character `\u0001`) can never outgrow either. Past one, writing stops and the next
/// [`Json::check`] reports it; the writers in between stay infallible.
pub(super) struct Json<'b> {
    pub(super) text: String,
    after_value: bool,
    budget: &'b Budget,
    cap: usize,
    over: Option<Over>,
}

#[derive(Clone, Copy)]
pub(super) enum Over {
    Budget,
    Cap,
}

impl<'b> Json<'b> {
    pub(super) fn new(budget: &'b Budget) -> Json<'b> {
        Json {
            text: String::new(),
            after_value: false,
            budget,
            cap: usize::try_from(max_json_bytes(budget.limit)).unwrap_or(usize::MAX),
            over: None,
        }
    }

    /// Makes room for `additional` bytes: doubling, as `String` would, but never past the cap,
    /// and only with the budget's leave. False once the JSON is over either.
    pub(super) fn grow(&mut self, additional: usize) -> bool {
        if self.over.is_some() {
            return false;
        }
        let needed = self.text.len() + additional;
        let capacity = self.text.capacity();
        if needed <= capacity {
            return true;
        }
        if needed > self.cap {
            self.over = Some(Over::Cap);
            return false;
        }
        let target = needed.max(capacity * 2).min(self.cap);
        if self.budget.charge((target - capacity) as u64).is_err() {
            self.over = Some(Over::Budget);
            return false;
        }
        self.text.reserve_exact(target - self.text.len());
        true
    }

    pub(super) fn check(&self) -> Result<(), Unreadable> {
        match self.over {
            None => Ok(()),
            Some(Over::Budget) => Err(Unreadable::TooLarge),
            Some(Over::Cap) => Err(Unreadable::Refused(Rejection::DicomJsonTooLarge {
                limit: self.cap as u64,
            })),
        }
    }

    pub(super) fn push(&mut self, c: char) {
        if self.grow(c.len_utf8()) {
            self.text.push(c);
        }
    }

    pub(super) fn push_str(&mut self, text: &str) {
        if self.grow(text.len()) {
            self.text.push_str(text);
        }
    }

    pub(super) fn raw(&mut self, text: impl AsRef<str>) {
        self.push_str(text.as_ref());
    }

    pub(super) fn base64(&mut self, bytes: &[u8]) {
        if self.grow(bytes.len().div_ceil(3) * 4) {
            STANDARD.encode_string(bytes, &mut self.text);
        }
    }

    pub(super) fn comma(&mut self) {
        if self.after_value {
            self.push(',');
        }
        self.after_value = true;
    }

    pub(super) fn open(&mut self, bracket: char) {
        self.push(bracket);
        self.after_value = false;
    }

    pub(super) fn close(&mut self, bracket: char) {
        self.push(bracket);
        self.after_value = true;
    }

    pub(super) fn key(&mut self, tag: Tag) {
        self.comma();
        self.push('"');
        for half in [tag.group(), tag.element()] {
            for shift in [12, 8, 4, 0] {
                self.push(char::from(
                    b"0123456789ABCDEF"[usize::from(half >> shift & 0xF)],
                ));
            }
        }
        self.push_str("\":");
        self.after_value = false;
    }

    /// A JSON string, escaped as RFC 8259 requires. Reports and embedded XML run to tens of
    /// kilobytes, so runs of eight bytes with nothing to escape are skipped a word at a time.
    pub(super) fn string(&mut self, value: &str) {
        if !self.grow(value.len() + 2) {
            return;
        }
        self.push('"');
        let bytes = value.as_bytes();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            if let Some(word) = bytes[at..].first_chunk::<8>()
                && !any_to_escape(u64::from_le_bytes(*word))
            {
                at += 8;
                continue;
            }
            let byte = bytes[at];
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1F => "",
                _ => {
                    at += 1;
                    continue;
                }
            };
            self.push_str(&value[start..at]);
            if escape.is_empty() {
                self.push_str(&format!("\\u{byte:04x}"));
            } else {
                self.push_str(escape);
            }
            at += 1;
            start = at;
        }
        self.push_str(&value[start..]);
        self.push('"');
    }
}

/// Whether any of eight bytes is a control character, `"` or `\`: the classic bit tricks for
/// "has a byte below n" and "has a zero byte", which never miss one (a hit is checked byte by
/// byte).
pub(super) const fn any_to_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn below(word: u64, n: u8) -> u64 {
        word.wrapping_sub(ONES * n as u64) & !word & HIGH
    }
    const fn zero(word: u64) -> u64 {
        below(word, 1)
    }
    below(word, 0x20) | zero(word ^ (ONES * b'"' as u64)) | zero(word ^ (ONES * b'\\' as u64)) != 0
}

#[cfg(test)]
mod tests {
    use dicom_core::VR;

    use crate::dicom::json::testing::*;

    use super::*;

    #[test]
    fn strings_are_escaped() {
        let text = "a \"quote\", a\ttab,\r\na line and \u{1} a control";
        let json = written([element(Tag(0x0020, 0x4000), VR::LT, text.as_bytes())]);
        assert_eq!(json["00204000"]["Value"][0], text);
        for special in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é'] {
            for at in 0..20 {
                let mut text: String = "0123456789abcdefghij".into();
                text.insert(at, special);
                let budget = Budget::new(1 << 20);
                let mut out = Json::new(&budget);
                out.string(&text);
                let back: String = serde_json::from_str(&out.text).expect("JSON string");
                assert_eq!(back, text, "{special:?} at {at}");
            }
        }
    }

    #[test]
    fn the_word_test_finds_every_byte_to_escape() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = byte;
                let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                assert_eq!(
                    any_to_escape(u64::from_le_bytes(word)),
                    expected,
                    "{byte} at {at}"
                );
            }
        }
    }
}
