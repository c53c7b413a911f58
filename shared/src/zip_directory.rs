//! A zip-based document's central directory, judged from the object's last bytes.
//!
//! Word, LibreOffice and most zip libraries open an archive by its end: the end of central
//! directory record, its ZIP64 counterpart past 4 GiB or 65535 entries, and the central
//! directory they point to. Those sizes are what a reader inflates to, while the local headers
//! at the front may say nothing (a data descriptor defers the sizes to after the data) or say
//! something else. So the zip-bomb limits are applied to the directory's declared sizes, per
//! entry and in total, and a directory that contradicts the local headers the sniffer saw is
//! refused: two readers would see two different documents.
//!
//! The `zip` crate is not used: it opens an archive through `Read + Seek` over the whole
//! object, while the worker reads the object once and keeps only its first bytes and its tail.
//! The records read here are fixed layouts (APPNOTE.TXT 6.3 §4.3.7, §4.3.12–4.3.16, §4.5.3),
//! parsed from byte slices with every offset and length checked against the slice it points
//! into; arithmetic on declared values saturates or is checked. The `zip_directory` fuzz target
//! runs [`check`] on arbitrary input.

use crate::Rejection;
use crate::verify::{ZIP_BOMB_MIN_BYTES, ZIP_BOMB_RATIO, ZIP_TAIL_LEN};

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";
const ZIP64_EOCD_LEN: usize = 56;
const CENTRAL_HEADER: &[u8; 4] = b"PK\x01\x02";
const CENTRAL_HEADER_LEN: usize = 46;
const LOCAL_HEADER: &[u8; 4] = b"PK\x03\x04";
const LOCAL_HEADER_LEN: usize = 30;
const ZIP64_EXTRA: u16 = 0x0001;
/// General purpose flag bit 3: sizes and CRC follow the data, the local header's are zero.
/// Only the central directory's sizes judge such an entry.
const DATA_DESCRIPTOR: u16 = 1 << 3;
/// An archive comment is at most this long, so the end record lies within this many bytes
/// (plus its own length) of the end.
const MAX_COMMENT: usize = u16::MAX as usize;
/// Entry names in rejection texts are cut to this many characters.
const NAME_SHOWN: usize = 200;

/// Judges the archive by its central directory. `tail` holds the object's last bytes (all of
/// them when it is short), `prefix` its first ones, `object_len` its length.
pub fn check(prefix: &[u8], tail: &[u8], object_len: u64) -> Result<(), Rejection> {
    let tail_len = tail.len() as u64;
    if tail_len > object_len {
        return Err(invalid("tail longer than the object"));
    }
    // The object's offset of `tail[0]`.
    let base = object_len - tail_len;
    let end = end_record(tail, base)?;
    if end.disk != 0 || end.directory_disk != 0 || end.entries_on_disk != end.entries {
        return Err(invalid("archive spans several disks"));
    }
    if end.entries == 0 {
        return Err(invalid("central directory lists no entries"));
    }
    // The directory ends where the (ZIP64) end record begins.
    let directory_end = end.at;
    let Some(directory_start) = (directory_end as u64).checked_sub(end.directory_size) else {
        return Err(if base > 0 {
            Rejection::ArchiveDirectoryTooLarge {
                size: end.directory_size,
                limit: ZIP_TAIL_LEN as u64,
            }
        } else {
            invalid("central directory is larger than the archive")
        });
    };
    if base + directory_start != end.directory_offset {
        return Err(invalid(
            "central directory is not where the end record says",
        ));
    }
    // Every directory entry takes at least its fixed part.
    if end.entries > end.directory_size / CENTRAL_HEADER_LEN as u64 {
        return Err(invalid("more entries than the central directory can hold"));
    }
    let directory = &tail[directory_start as usize..directory_end];

    let mut at = 0;
    let mut total_uncompressed: u64 = 0;
    let mut total_stored: u64 = 0;
    let mut lists_first_local_header = false;
    for _ in 0..end.entries {
        let entry = central_entry(directory, &mut at)?;
        if entry.uncompressed > ZIP_BOMB_MIN_BYTES
            && entry.uncompressed > entry.compressed.saturating_mul(ZIP_BOMB_RATIO)
        {
            return Err(Rejection::ZipBomb {
                entry: entry_name(entry.name),
                ratio: entry.uncompressed / entry.compressed.max(1),
                uncompressed: entry.uncompressed,
            });
        }
        let stored =
            (LOCAL_HEADER_LEN as u64 + entry.name.len() as u64).saturating_add(entry.compressed);
        if entry.local_offset.saturating_add(stored) > end.directory_offset {
            return Err(invalid("entry's data runs into the central directory"));
        }
        total_uncompressed = total_uncompressed.saturating_add(entry.uncompressed);
        total_stored = total_stored.saturating_add(stored);
        lists_first_local_header |= entry.local_offset == 0;
        agrees_with_local_header(prefix, &entry)?;
    }
    if at != directory.len() {
        return Err(invalid("central directory holds more than its entries"));
    }
    // Entries that share their data (overlapping local offsets) expand the same bytes many
    // times over: the stored entries cannot take more room than lies before the directory.
    if total_stored > end.directory_offset {
        return Err(invalid("entries overlap"));
    }
    if prefix.starts_with(LOCAL_HEADER) && !lists_first_local_header {
        return Err(invalid(
            "central directory does not list the first local header",
        ));
    }
    if total_uncompressed > ZIP_BOMB_MIN_BYTES
        && total_uncompressed > object_len.saturating_mul(ZIP_BOMB_RATIO)
    {
        return Err(Rejection::ArchiveExpands {
            entries: end.entries,
            ratio: total_uncompressed / object_len.max(1),
            uncompressed: total_uncompressed,
        });
    }
    Ok(())
}

/// An entry's name for a rejection text: lossy UTF-8, cut to [`NAME_SHOWN`] characters.
pub fn entry_name(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.char_indices().nth(NAME_SHOWN) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.into_owned(),
    }
}

fn invalid(why: &'static str) -> Rejection {
    Rejection::ArchiveInvalid(why)
}

/// What the end records say, with ZIP64 values in place of the 16- and 32-bit ones.
#[derive(Debug)]
struct EndRecord {
    /// Index in the tail of the record the directory ends at (the ZIP64 one when present).
    at: usize,
    disk: u64,
    directory_disk: u64,
    entries_on_disk: u64,
    entries: u64,
    directory_size: u64,
    directory_offset: u64,
}

/// Finds the end of central directory record: the last one in the tail, as Python's zipfile and
/// others pick it, whose comment must end exactly at the end of the object. A second record
/// that would also end the object (one hidden in the comment of another, or the other way
/// round) makes readers disagree on which archive this is, so it is refused.
fn end_record(tail: &[u8], base: u64) -> Result<EndRecord, Rejection> {
    let lowest = tail.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    let candidates = (lowest..=tail.len().saturating_sub(EOCD_LEN))
        .rev()
        .filter(|&at| tail.get(at..at + 4) == Some(EOCD));
    let mut last = None;
    for at in candidates {
        let Some(comment) = u16_at(tail, at + 20) else {
            continue;
        };
        let ends_the_object = at + EOCD_LEN + usize::from(comment) == tail.len();
        match last {
            None if ends_the_object => last = Some(at),
            None => {
                return Err(invalid(
                    "end of central directory record does not end the archive",
                ));
            }
            Some(_) if ends_the_object => {
                return Err(invalid("more than one end of central directory record"));
            }
            Some(_) => {}
        }
    }
    let Some(at) = last else {
        return Err(invalid("no end of central directory record"));
    };
    let field16 = |i| u16_at(tail, at + i).map(u64::from).unwrap_or_default();
    let field32 = |i| u32_at(tail, at + i).map(u64::from).unwrap_or_default();
    let classic = EndRecord {
        at,
        disk: field16(4),
        directory_disk: field16(6),
        entries_on_disk: field16(8),
        entries: field16(10),
        directory_size: field32(12),
        directory_offset: field32(16),
    };
    let locator = at
        .checked_sub(ZIP64_LOCATOR_LEN)
        .filter(|&l| tail.get(l..l + 4) == Some(ZIP64_LOCATOR));
    let Some(locator) = locator else {
        let needs_zip64 = classic.entries == u64::from(u16::MAX)
            || classic.entries_on_disk == u64::from(u16::MAX)
            || classic.directory_size == u64::from(u32::MAX)
            || classic.directory_offset == u64::from(u32::MAX);
        return if needs_zip64 {
            Err(invalid("ZIP64 values without a ZIP64 end record"))
        } else {
            Ok(classic)
        };
    };
    zip64_end_record(tail, base, locator, &classic)
}

/// Reads the ZIP64 end record the locator points to. Its values replace the classic record's;
/// a classic value that is not the "see ZIP64" sentinel must agree with its replacement, or
/// readers of either record would see different archives.
fn zip64_end_record(
    tail: &[u8],
    base: u64,
    locator: usize,
    classic: &EndRecord,
) -> Result<EndRecord, Rejection> {
    let (Some(record_disk), Some(offset), Some(disks)) = (
        u32_at(tail, locator + 4),
        u64_at(tail, locator + 8),
        u32_at(tail, locator + 16),
    ) else {
        return Err(invalid("truncated ZIP64 end record locator"));
    };
    if record_disk != 0 || disks > 1 {
        return Err(invalid("archive spans several disks"));
    }
    // The locator gives an object offset; the record lies before the locator.
    let record = offset
        .checked_sub(base)
        .and_then(|at| usize::try_from(at).ok())
        .filter(|&at| at.saturating_add(ZIP64_EOCD_LEN) <= locator)
        .ok_or_else(|| invalid("ZIP64 end record is not where its locator says"))?;
    if tail.get(record..record + 4) != Some(ZIP64_EOCD) {
        return Err(invalid("ZIP64 end record is not where its locator says"));
    }
    let field32 = |i| u32_at(tail, record + i).map(u64::from).unwrap_or_default();
    let field64 = |i| u64_at(tail, record + i).unwrap_or_default();
    let zip64 = EndRecord {
        at: record,
        disk: field32(16),
        directory_disk: field32(20),
        entries_on_disk: field64(24),
        entries: field64(32),
        directory_size: field64(40),
        directory_offset: field64(48),
    };
    let agrees = |classic: u64, sentinel: u64, zip64: u64| classic == sentinel || classic == zip64;
    let max16 = u64::from(u16::MAX);
    let max32 = u64::from(u32::MAX);
    if !(agrees(classic.disk, max16, zip64.disk)
        && agrees(classic.directory_disk, max16, zip64.directory_disk)
        && agrees(classic.entries_on_disk, max16, zip64.entries_on_disk)
        && agrees(classic.entries, max16, zip64.entries)
        && agrees(classic.directory_size, max32, zip64.directory_size)
        && agrees(classic.directory_offset, max32, zip64.directory_offset))
    {
        return Err(invalid("ZIP64 end record disagrees with the end record"));
    }
    Ok(zip64)
}

/// One central directory entry, with ZIP64 values in place of the 32-bit ones.
#[derive(Debug)]
struct Entry<'a> {
    name: &'a [u8],
    method: u16,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// Reads the entry at `*at` in the directory and moves `*at` past it.
fn central_entry<'a>(directory: &'a [u8], at: &mut usize) -> Result<Entry<'a>, Rejection> {
    let start = *at;
    let header = directory
        .get(start..start + CENTRAL_HEADER_LEN)
        .filter(|header| header.starts_with(CENTRAL_HEADER))
        .ok_or_else(|| invalid("central directory entry is truncated or malformed"))?;
    let field16 = |i| u16_at(header, i).unwrap_or_default();
    let field32 = |i| u32_at(header, i).unwrap_or_default();
    let name_len = usize::from(field16(28));
    let extra_len = usize::from(field16(30));
    let comment_len = usize::from(field16(32));
    let name_at = start + CENTRAL_HEADER_LEN;
    let extra_at = name_at + name_len;
    let next = extra_at + extra_len + comment_len;
    if next > directory.len() {
        return Err(invalid("central directory entry runs past the directory"));
    }
    let name = &directory[name_at..extra_at];
    let extra = &directory[extra_at..extra_at + extra_len];
    *at = next;

    let mut uncompressed = u64::from(field32(24));
    let mut compressed = u64::from(field32(20));
    let mut local_offset = u64::from(field32(42));
    let sentinel = u64::from(u32::MAX);
    let wanted = [uncompressed, compressed, local_offset]
        .iter()
        .filter(|&&v| v == sentinel)
        .count();
    if wanted > 0 {
        // The ZIP64 extra field holds, in this order, only the values whose 32-bit field is
        // the sentinel.
        let values = zip64_extra(extra)
            .filter(|values| values.len() >= wanted * 8)
            .ok_or_else(|| invalid("ZIP64 sizes missing from a central directory entry"))?;
        let mut next_value = (0..wanted).map(|i| u64_at(values, i * 8).unwrap_or_default());
        for field in [&mut uncompressed, &mut compressed, &mut local_offset] {
            if *field == sentinel {
                *field = next_value.next().unwrap_or_default();
            }
        }
    }
    Ok(Entry {
        name,
        method: field16(10),
        compressed,
        uncompressed,
        local_offset,
    })
}

/// The data of the ZIP64 extended information extra field, if the extra block has one.
fn zip64_extra(mut extra: &[u8]) -> Option<&[u8]> {
    while let (Some(id), Some(size)) = (u16_at(extra, 0), u16_at(extra, 2)) {
        let data = extra.get(4..4 + usize::from(size))?;
        if id == ZIP64_EXTRA {
            return Some(data);
        }
        extra = &extra[4 + usize::from(size)..];
    }
    None
}

/// When the entry's local header lies within the prefix, it must name the same entry with the
/// same method and, unless the sizes follow the data, the same sizes.
fn agrees_with_local_header(prefix: &[u8], entry: &Entry<'_>) -> Result<(), Rejection> {
    let Some(at) = usize::try_from(entry.local_offset)
        .ok()
        .filter(|&at| at < prefix.len())
    else {
        return Ok(());
    };
    let Some(local) = prefix.get(at..at + LOCAL_HEADER_LEN) else {
        return Ok(());
    };
    if !local.starts_with(LOCAL_HEADER) {
        return Err(invalid("central directory entry points at no local header"));
    }
    let field16 = |i| u16_at(local, i).unwrap_or_default();
    let field32 = |i| u64::from(u32_at(local, i).unwrap_or_default());
    let name_at = at + LOCAL_HEADER_LEN;
    if let Some(name) = prefix.get(name_at..name_at + usize::from(field16(26)))
        && name != entry.name
    {
        return Err(invalid(
            "local header and central directory name different entries",
        ));
    }
    if field16(8) != entry.method {
        return Err(invalid(
            "local header and central directory disagree on the compression method",
        ));
    }
    let (compressed, uncompressed) = (field32(18), field32(22));
    let sizes_here = field16(6) & DATA_DESCRIPTOR == 0;
    let zip64_here = compressed == u64::from(u32::MAX) || uncompressed == u64::from(u32::MAX);
    if sizes_here
        && !zip64_here
        && (compressed != entry.compressed || uncompressed != entry.uncompressed)
    {
        return Err(invalid(
            "local header and central directory disagree on an entry's sizes",
        ));
    }
    Ok(())
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ZipArchive, ZipMember};
    use crate::sniff::SNIFF_LEN;
    use crate::verify::check_archive;

    /// Judges the archive as the pipeline does: its sniffed prefix and its kept tail.
    fn judge(bytes: &[u8]) -> Result<(), Rejection> {
        let prefix = &bytes[..bytes.len().min(SNIFF_LEN)];
        let tail = &bytes[bytes.len().saturating_sub(ZIP_TAIL_LEN)..];
        check(prefix, tail, bytes.len() as u64)
    }

    fn invalid_because(bytes: &[u8]) -> &'static str {
        match judge(bytes) {
            Err(Rejection::ArchiveInvalid(why)) => why,
            other => panic!("expected an invalid archive, got {other:?}"),
        }
    }

    /// The offset of the first central directory entry, and of the end record.
    fn directory_and_end(bytes: &[u8], comment: usize) -> (usize, usize) {
        let end = bytes.len() - EOCD_LEN - comment;
        let directory = u32_at(bytes, end + 16).unwrap() as usize;
        (directory, end)
    }

    #[test]
    fn ordinary_documents_pass_in_every_layout() {
        let docx = ZipArchive::docx();
        assert_eq!(judge(&docx.to_bytes()), Ok(()));
        let mut each = docx.clone();
        for member in &mut each.members {
            member.data_descriptor = true;
        }
        assert_eq!(judge(&each.to_bytes()), Ok(()), "data descriptors");
        for member in &mut each.members {
            member.zip64 = true;
        }
        each.zip64_end = true;
        assert_eq!(
            judge(&each.to_bytes()),
            Ok(()),
            "ZIP64 with data descriptors"
        );
        let mut zip64 = docx.clone();
        zip64.zip64_end = true;
        zip64.members[2].zip64 = true;
        assert_eq!(
            judge(&zip64.to_bytes()),
            Ok(()),
            "ZIP64 sizes in both headers"
        );
        let mut commented = docx;
        commented.comment = vec![b'c'; MAX_COMMENT];
        assert_eq!(
            judge(&commented.to_bytes()),
            Ok(()),
            "the longest comment pads the end record"
        );
    }

    #[test]
    fn a_zip64_bomb_passes_the_local_headers_and_is_refused_by_the_directory() {
        let mut bomb = ZipArchive::docx();
        bomb.zip64_end = true;
        bomb.members[2] = ZipMember {
            zip64: true,
            ..ZipMember::new("word/document.xml", 5_000, 1 << 40)
        };
        let bytes = bomb.to_bytes();
        assert_eq!(
            check_archive(&bytes),
            Ok(()),
            "the local headers say 0xFFFFFFFF"
        );
        assert_eq!(
            judge(&bytes),
            Err(Rejection::ZipBomb {
                entry: "word/document.xml".into(),
                ratio: (1 << 40) / 5_000,
                uncompressed: 1 << 40,
            })
        );
    }

    #[test]
    fn a_data_descriptor_bomb_is_judged_by_the_directory_sizes() {
        let mut bomb = ZipArchive::docx();
        bomb.members[2] = ZipMember {
            data_descriptor: true,
            ..ZipMember::new("word/document.xml", 4_000, 4_000_000_000)
        };
        let bytes = bomb.to_bytes();
        assert_eq!(
            check_archive(&bytes),
            Ok(()),
            "the local header's sizes are zero"
        );
        assert!(
            matches!(
                judge(&bytes),
                Err(Rejection::ZipBomb {
                    uncompressed: 4_000_000_000,
                    ..
                })
            ),
            "{:?}",
            judge(&bytes)
        );
    }

    #[test]
    fn many_entries_each_below_the_limit_are_refused_in_total() {
        let mut bomb = ZipArchive::docx();
        for n in 0..60 {
            bomb.members.push(ZipMember::new(
                &format!("word/media/{n}.xml"),
                1_000,
                99 << 20,
            ));
        }
        let bytes = bomb.to_bytes();
        assert!(matches!(
            judge(&bytes),
            Err(Rejection::ArchiveExpands { entries: 64, .. })
        ));
    }

    #[test]
    fn a_directory_that_disagrees_with_the_local_headers_is_refused() {
        let bytes = ZipArchive::docx().to_bytes();
        let (directory, _) = directory_and_end(&bytes, 0);
        let mut sizes = bytes.clone();
        sizes[directory + 24..directory + 28].copy_from_slice(&3_000u32.to_le_bytes());
        assert_eq!(
            invalid_because(&sizes),
            "local header and central directory disagree on an entry's sizes"
        );
        let mut name = bytes.clone();
        name[directory + CENTRAL_HEADER_LEN] = b'{';
        assert_eq!(
            invalid_because(&name),
            "local header and central directory name different entries"
        );
        let mut method = bytes.clone();
        method[directory + 10] = 0;
        assert_eq!(
            invalid_because(&method),
            "local header and central directory disagree on the compression method"
        );
        let mut offset = bytes;
        offset[directory + 42] = 7;
        assert_eq!(
            invalid_because(&offset),
            "central directory entry points at no local header"
        );
    }

    #[test]
    fn a_huge_entry_count_is_refused_before_any_entry_is_read() {
        let bytes = ZipArchive::docx().to_bytes();
        let (_, end) = directory_and_end(&bytes, 0);
        let mut count = bytes.clone();
        count[end + 8..end + 12].copy_from_slice(&[0xFE, 0xFF, 0xFE, 0xFF]);
        assert_eq!(
            invalid_because(&count),
            "more entries than the central directory can hold"
        );
        let mut zip64 = ZipArchive::docx();
        zip64.zip64_end = true;
        let mut bytes = zip64.to_bytes();
        let record = bytes.len() - EOCD_LEN - ZIP64_LOCATOR_LEN - ZIP64_EOCD_LEN;
        bytes[record + 24..record + 40].copy_from_slice(&[0xFF; 16]);
        assert_eq!(
            invalid_because(&bytes),
            "more entries than the central directory can hold"
        );
        let mut fewer = ZipArchive::docx().to_bytes();
        fewer[end + 8..end + 12].copy_from_slice(&[3, 0, 3, 0]);
        assert_eq!(
            invalid_because(&fewer),
            "central directory holds more than its entries"
        );
    }

    #[test]
    fn end_records_that_readers_could_pick_differently_are_refused() {
        let docx = ZipArchive::docx();
        let real = docx.to_bytes();
        // A second, complete end record in the comment: the last one ends the object, and so
        // does the real one with its comment.
        let mut hidden = docx.clone();
        let fake_end = &real[real.len() - EOCD_LEN..];
        hidden.comment = fake_end.to_vec();
        assert_eq!(
            invalid_because(&hidden.to_bytes()),
            "more than one end of central directory record"
        );
        // Python's zipfile takes the last signature even when its comment does not end the file.
        let mut trailing = docx.clone();
        trailing.comment = b"PK\x05\x06 and then some more words to read".to_vec();
        assert_eq!(
            invalid_because(&trailing.to_bytes()),
            "end of central directory record does not end the archive"
        );
        let mut junk = real.clone();
        junk.extend_from_slice(b"junk");
        assert_eq!(
            invalid_because(&junk),
            "end of central directory record does not end the archive"
        );
        assert_eq!(
            invalid_because(b"PK\x03\x04 not really"),
            "no end of central directory record"
        );
    }

    #[test]
    fn zip64_records_must_agree_and_be_present() {
        let mut zip64 = ZipArchive::docx();
        zip64.zip64_end = true;
        let mut bytes = zip64.to_bytes();
        let end = bytes.len() - EOCD_LEN;
        bytes[end + 10..end + 12].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(
            invalid_because(&bytes),
            "ZIP64 end record disagrees with the end record"
        );
        let mut moved = zip64.to_bytes();
        let locator = moved.len() - EOCD_LEN - ZIP64_LOCATOR_LEN;
        moved[locator + 8] ^= 1;
        assert_eq!(
            invalid_because(&moved),
            "ZIP64 end record is not where its locator says"
        );
        let mut sentinel = ZipArchive::docx().to_bytes();
        let end = sentinel.len() - EOCD_LEN;
        sentinel[end + 16..end + 20].copy_from_slice(&[0xFF; 4]);
        assert_eq!(
            invalid_because(&sentinel),
            "ZIP64 values without a ZIP64 end record"
        );
        let mut member = ZipArchive::docx();
        member.members[0].zip64 = true;
        let mut bytes = member.to_bytes();
        let (directory, _) = directory_and_end(&bytes, 0);
        // Shorten the entry's ZIP64 field to one value of the three it owes.
        bytes[directory + CENTRAL_HEADER_LEN + 19 + 2..][..2].copy_from_slice(&8u16.to_le_bytes());
        assert_eq!(
            invalid_because(&bytes),
            "ZIP64 sizes missing from a central directory entry"
        );
    }

    #[test]
    fn a_directory_larger_than_the_kept_tail_is_refused() {
        let mut big = ZipArchive::docx();
        for n in 0..100 {
            big.members
                .push(ZipMember::new(&format!("word/media/image{n}.png"), 10, 10));
        }
        let bytes = big.to_bytes();
        let kept = &bytes[bytes.len() - 1_000..];
        let prefix = &bytes[..SNIFF_LEN.min(bytes.len())];
        assert!(matches!(
            check(prefix, kept, bytes.len() as u64),
            Err(Rejection::ArchiveDirectoryTooLarge { limit, .. }) if limit == ZIP_TAIL_LEN as u64
        ));
    }

    #[test]
    fn entries_that_share_their_data_are_refused() {
        // Fifield's non-recursive bomb: many directory entries point at the same local data.
        let single = ZipArchive {
            members: vec![ZipMember::new("word/document.xml", 20_000, 90_000)],
            ..ZipArchive::default()
        };
        let bytes = single.to_bytes();
        let (directory, end) = directory_and_end(&bytes, 0);
        let entry = &bytes[directory..end];
        let copies = 10u16;
        let mut shared = bytes[..directory].to_vec();
        for _ in 0..copies {
            shared.extend_from_slice(entry);
        }
        shared.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        shared.extend_from_slice(&copies.to_le_bytes());
        shared.extend_from_slice(&copies.to_le_bytes());
        shared.extend_from_slice(&(entry.len() as u32 * u32::from(copies)).to_le_bytes());
        shared.extend_from_slice(&(directory as u32).to_le_bytes());
        shared.extend_from_slice(&[0, 0]);
        assert_eq!(invalid_because(&shared), "entries overlap");
    }

    #[test]
    fn no_cut_or_flipped_byte_makes_the_check_panic() {
        let mut zip64 = ZipArchive::docx();
        zip64.zip64_end = true;
        zip64.members[1].zip64 = true;
        zip64.members[2].data_descriptor = true;
        let bytes = zip64.to_bytes();
        for cut in 0..bytes.len() {
            let _ = judge(&bytes[..cut]);
            let _ = judge(&bytes[cut..]);
        }
        let directory = bytes
            .windows(4)
            .position(|window| window == CENTRAL_HEADER)
            .unwrap();
        for at in directory..bytes.len() {
            for value in [0x00, 0x7F, 0xFF] {
                let mut flipped = bytes.clone();
                flipped[at] = value;
                let _ = judge(&flipped);
            }
        }
    }

    #[test]
    fn entry_names_in_reasons_are_bounded() {
        assert_eq!(entry_name(b"word/document.xml"), "word/document.xml");
        let long = entry_name(&[b'a'; 70_000]);
        assert_eq!(long.chars().count(), NAME_SHOWN + 1);
    }
}
