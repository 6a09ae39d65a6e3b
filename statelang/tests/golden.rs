//! Golden files for validation: every `tests/golden/NAME.json` definition has a
//! `NAME.problems` file holding exactly what `stepyard validate` prints for it, one
//! problem per line (`pointer: CODE: message`), or nothing for a valid definition.
//!
//! After an intended change of messages, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p stepyard-statelang --test golden` and review the diff.

use stepyard_statelang::validate;

#[test]
fn validation_messages_match_the_golden_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut definitions: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    definitions.sort();
    assert!(!definitions.is_empty(), "no golden definitions found");
    let mut mismatches = Vec::new();
    for path in &definitions {
        let text = std::fs::read_to_string(path).expect("readable definition");
        let actual: String = validate(&text).iter().map(|p| format!("{p}\n")).collect();
        let golden = path.with_extension("problems");
        if update {
            std::fs::write(&golden, &actual).expect("writable golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "validation output differs from the golden files (UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}
