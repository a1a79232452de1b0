//! `/openapi.json` is an OpenAPI 3 document of every route, generated from the handlers: each
//! route the sandbox serves is in it with its methods, and every schema reference resolves.

mod support;

use serde_json::Value;
use support::{client, config};

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(target) = child.as_str() {
                        refs.push(target.to_string());
                    }
                } else {
                    collect_refs(child, refs);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_lists_every_route_and_its_references_resolve() {
    let sandbox = kycdash::sandbox::start(config()).await.unwrap();
    let anonymous = client(&sandbox, None);
    let response = anonymous.get("/openapi.json").await;
    response.assert_status(200);
    let doc = response.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let expected = [
        ("/v1/customers", &["post", "get"][..]),
        ("/v1/customers/{id}", &["get", "patch"]),
        ("/v1/compliance/kyc", &["post"]),
        ("/v1/compliance/kyc/{onboardingId}/rerun", &["post"]),
        ("/v1/compliance/upload-doc", &["post"]),
        ("/v1/compliance/documents/{customerId}", &["get"]),
        ("/v1/compliance/status/{customerId}", &["get"]),
        ("/v1/webhooks", &["post", "get"]),
        ("/v1/webhooks/{id}", &["delete"]),
        ("/v1/webhooks/{id}/deliveries", &["get"]),
        ("/v1/webhooks/{id}/deliveries/{deliveryId}/resend", &["post"]),
        ("/v1/sandbox/customers/{id}/simulate", &["post"]),
        ("/v1/sandbox/clock/advance", &["post"]),
        ("/v1/sandbox/clock", &["get"]),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths.len(),
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, methods) in expected {
        for method in methods {
            let operation = &paths[path][*method];
            assert!(operation.is_object(), "{method} {path} is missing");
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()));
        }
    }

    // Every error answer is documented, as the problem+json the sandbox sends.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "401", "429"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is not documented as problem+json"
                    );
                }
            }
        }
    }

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Customer",
        "CustomerProfile",
        "ComplianceStatus",
        "Check",
        "Problem",
        "KycStarted",
        "WebhookEvent",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing");
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
