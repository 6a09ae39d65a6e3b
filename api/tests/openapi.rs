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

/// Whether `schema` (following `$ref`s into `components.schemas`) carries an example anywhere:
/// on itself, on a property, on its items, or on one of its alternatives.
fn has_example(
    schema: &serde_json::Value,
    schemas: &serde_json::Map<String, serde_json::Value>,
    seen: &mut Vec<String>,
) -> bool {
    let Some(object) = schema.as_object() else {
        return false;
    };
    if object.contains_key("example") || object.contains_key("examples") {
        return true;
    }
    if let Some(reference) = object.get("$ref").and_then(|r| r.as_str()) {
        let name = reference.rsplit('/').next().unwrap_or_default().to_owned();
        if seen.contains(&name) {
            return false;
        }
        seen.push(name.clone());
        return schemas
            .get(&name)
            .is_some_and(|target| has_example(target, schemas, seen));
    }
    let properties = object
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flat_map(|p| p.values());
    let alternatives = ["allOf", "oneOf", "anyOf"]
        .iter()
        .filter_map(|key| object.get(*key).and_then(|v| v.as_array()))
        .flatten();
    let nested = ["items", "additionalProperties"]
        .iter()
        .filter_map(|key| object.get(*key));
    properties
        .chain(alternatives)
        .chain(nested)
        .any(|inner| has_example(inner, schemas, &mut seen.clone()))
}

/// Swagger UI's try-it-out starts from the examples: every request body and every 2xx response of
/// every operation must have one somewhere in its schema.
#[test]
fn every_request_body_and_success_response_has_an_example() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read openapi.json"))
            .expect("openapi.json is JSON");
    let empty = serde_json::Map::new();
    let schemas = document["components"]["schemas"]
        .as_object()
        .unwrap_or(&empty);
    let mut missing = Vec::new();
    let mut checked = 0;
    for (route, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("path item") {
            let mut bodies: Vec<(String, &serde_json::Value)> = Vec::new();
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                bodies.extend(content.iter().map(|(ct, c)| (format!("request {ct}"), c)));
            }
            if let Some(responses) = operation["responses"].as_object() {
                for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
                    if let Some(content) = response["content"].as_object() {
                        bodies.extend(content.iter().map(|(ct, c)| (format!("{status} {ct}"), c)));
                    }
                }
            }
            for (what, content) in bodies {
                checked += 1;
                let documented = content.get("example").is_some()
                    || content.get("examples").is_some()
                    || has_example(&content["schema"], schemas, &mut Vec::new());
                if !documented {
                    missing.push(format!("{} {route}: {what}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} bodies found: is the walk broken?"
    );
    assert!(
        missing.is_empty(),
        "no example anywhere in these schemas (add `#[schema(example = ...)]`):\n{}",
        missing.join("\n")
    );
}

/// What `ApiJson` can answer on any JSON body is in the document of every operation that takes one.
#[test]
fn every_json_body_operation_documents_the_body_errors() {
    let document = serde_json::to_value(stepyard_api::openapi()).expect("serialize");
    let mut missing = Vec::new();
    for (route, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("path item") {
            if operation["requestBody"]["content"]["application/json"].is_null() {
                continue;
            }
            for status in ["400", "413", "415", "422"] {
                let response = &operation["responses"][status];
                if response["content"]["application/json"]["schema"]["$ref"]
                    != "#/components/schemas/ErrorBody"
                {
                    missing.push(format!("{} {route}: {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented body errors:\n{}",
        missing.join("\n")
    );
}
