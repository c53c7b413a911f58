//! Writes the demo's sample uploads into a folder: DICOM files in several transfer syntaxes, a
//! PDF, a PNG, and a few that must be rejected. Each file name says where it is uploaded.
//!
//! cargo run -p docworker-shared --features fixtures --bin docworker-samples -- OUT_DIR

use std::path::PathBuf;

use docworker_shared::fixtures::{self, SampleDicom};

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "samples".into()));
    std::fs::create_dir_all(&out)?;
    let ct = |ts: &str, n: u32| SampleDicom {
        sop_instance_uid: Some(format!("1.2.826.0.1.3680043.8.498.1.1.{n}")),
        ..SampleDicom::with_transfer_syntax(ts)
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "medical__ct-explicit-le.dcm",
            ct("1.2.840.10008.1.2.1", 1).to_bytes(),
        ),
        (
            "medical__ct-implicit-le.dcm",
            ct("1.2.840.10008.1.2", 2).to_bytes(),
        ),
        (
            "medical__ct-deflated.dcm",
            ct("1.2.840.10008.1.2.1.99", 3).to_bytes(),
        ),
        (
            "medical__ct-jpeg-baseline.dcm",
            ct("1.2.840.10008.1.2.4.50", 4).to_bytes(),
        ),
        ("reports__discharge-letter.pdf", fixtures::pdf()),
        ("images__intraoral.png", fixtures::png()),
        ("prescriptions__actually-a-png.pdf", fixtures::png()),
        (
            "medical__not-really.dcm",
            b"this is plain text, not DICOM\n".to_vec(),
        ),
        ("admin__scan.dcm", ct("1.2.840.10008.1.2.1", 5).to_bytes()),
        // The gate: the EICAR test file named as a PDF, refused as malware and tagged infected.
        ("reports__invoice-eicar.pdf", fixtures::EICAR.to_vec()),
    ];
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes)?;
    }
    Ok(())
}
