//! `openapi/openapi.json` is generated from the code; this test fails when the committed file is stale.
//! Regenerate with `UPDATE_OPENAPI=1 cargo test -p stepyard-api --test openapi`.

use std::path::PathBuf;

#[test]
fn committed_openapi_json_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = stepyard_api::openapi()
        .to_pretty_json()
        .expect("serialize the OpenAPI document")
        + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p stepyard-api --test openapi` and commit it"
    );
}
