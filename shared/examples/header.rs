//! Reads the DICOM header of each file named on the command line, as the worker does, and prints
//! one JSON line per file: the promoted UIDs and the verdict. Patient ID is printed only as a
//! SHA-256, so the output can be compared with another reader without showing it.
//!
//! With `--json` first, the whole DICOM JSON is printed too: it holds the file's PHI, so use it only
//! on test data.
//!
//! cargo run -p docworker-shared --features fixtures --example header -- [--json] FILE...

use sha2::{Digest, Sha256};

fn main() {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let with_json = paths.first().is_some_and(|a| a == "--json");
    if with_json {
        paths.remove(0);
    }
    for path in paths {
        let line = match std::fs::File::open(&path) {
            Err(e) => serde_json::json!({"file": path, "error": e.to_string()}),
            Ok(file) => {
                match docworker_shared::dicom::read_header(std::io::BufReader::new(file), 16 << 20)
                {
                    Ok(h) => {
                        let dicom = parsed(&h.json);
                        serde_json::json!({
                            "json_attributes": dicom.as_object().map(|attributes| attributes.len()),
                            "dicom": if with_json { dicom } else { serde_json::Value::Null },
                            "file": path,
                            "transfer_syntax_uid": h.transfer_syntax_uid,
                            "study_instance_uid": h.study_instance_uid,
                            "series_instance_uid": h.series_instance_uid,
                            "sop_instance_uid": h.sop_instance_uid,
                            "sop_class_uid": h.sop_class_uid,
                            "modality": h.modality,
                            "study_date": h.study_date.map(|d| d.format("%Y%m%d").to_string()),
                            "patient_id_sha256": h.patient_id.map(|p| hex::encode(Sha256::digest(p.as_bytes()))),
                        })
                    }
                    Err(e) => serde_json::json!({"file": path, "rejected": e.to_string()}),
                }
            }
        };
        println!("{line}");
    }
}

/// The DICOM JSON as a value. shared's dev-dependencies turn on serde_json's `float_roundtrip`, so
/// numbers come back exactly as the worker wrote them. Text that does not parse is printed as an
/// error, which the comparison with pydicom counts as a disagreement.
fn parsed(json: &str) -> serde_json::Value {
    serde_json::from_str(json)
        .unwrap_or_else(|e| serde_json::json!({"invalid DICOM JSON": e.to_string()}))
}
