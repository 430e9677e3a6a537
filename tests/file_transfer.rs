//! The file_transfer example's embedded mode copies a file exactly, and
//! fails with the path in the message when the source is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/file_transfer.rs"]
#[allow(dead_code)] // its `main` and the two-process mode
mod example;

use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("file_transfer");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", std::process::id()))
}

#[tokio::test]
async fn copies_a_file_of_a_few_mib_exactly() {
    let (src, dst) = (scratch("src"), scratch("dst"));
    // Not a multiple of the fragment size; no two 64 KiB blocks alike.
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    example::copy(src.to_str().unwrap(), dst.to_str().unwrap())
        .await
        .unwrap();
    let copied = std::fs::read(&dst).unwrap();
    assert!(copied == data, "the copy differs ({} bytes)", copied.len());
    std::fs::remove_file(src).unwrap();
    std::fs::remove_file(dst).unwrap();
}

#[tokio::test]
async fn a_missing_source_is_an_error_naming_it() {
    let (src, dst) = (scratch("missing"), scratch("never-written"));
    let err = example::copy(src.to_str().unwrap(), dst.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with(src.to_str().unwrap()), "{err}");
    assert!(!dst.exists(), "the destination was created");
}
