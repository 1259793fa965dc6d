//! The corpus smoke of `make test`: every file of every `fuzz/corpus/<target>/`
//! goes through the same property checks as its fuzz target, on stable Rust,
//! without cargo-fuzz. A missing or empty corpus folder fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use tickstream_fuzz_checks::{Outcome, TARGETS};

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_corpus_file_keeps_every_property() {
    for (name, check) in TARGETS {
        let dir = corpus_root().join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus folder {} is missing: {e}", dir.display()));
        let mut files = 0;
        let mut accepted = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            // A property violation panics; name the file that caused it.
            let result = std::panic::catch_unwind(|| check(&data));
            match result {
                Ok(Outcome::Accepted) => accepted += 1,
                Ok(Outcome::Rejected) => {}
                Err(_) => panic!("{name}: property failed on {}", path.display()),
            }
            files += 1;
        }
        assert!(files > 0, "corpus folder {} is empty", dir.display());
        assert!(
            accepted > 0,
            "{name}: no file of {} is accepted by the parser, so the corpus never reaches the accepting path",
            dir.display()
        );
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let targets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (name, _) in TARGETS {
        let file = targets.join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} is missing: {e}", file.display()));
        assert!(
            src.contains(&format!("tickstream_fuzz_checks::{name}")),
            "{} does not call tickstream_fuzz_checks::{name}",
            file.display()
        );
    }
}
