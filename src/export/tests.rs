use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::domain::{ComplianceStatus, WorkflowView};
use crate::sync::cache::UploadRow;

fn customer(external_id: &str) -> Customer {
    serde_json::from_value(json!({
        "id": "0190f3a0-0000-7000-8000-000000000001",
        "externalId": external_id,
        "email": "ada@example.com",
        "ipAddress": "203.0.113.7",
        "createdAt": "2026-01-02T03:04:05Z",
        "updatedAt": "2026-01-02T03:04:05Z",
        "kyc": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "birthDate": "1990-04-12",
            "documentNumber": "X1234567",
            "mainAddress": {
                "street1": "123 Main St",
                "cityCounty": "New York",
                "stateRegion": "NY",
                "zip": "10001",
                "countryCode": "US"
            },
            "nationality": "US",
            "occupation": "11"
        }
    }))
    .unwrap()
}

fn approved_status() -> ComplianceStatus {
    serde_json::from_value(json!({
        "customerId": "0190f3a0-0000-7000-8000-000000000001",
        "onboardingId": "0190f3a0-0000-7000-8000-0000000000aa",
        "isCompliant": true,
        "onboardingStatus": "APPROVED",
        "nextAction": null,
        "checks": [
            {"type": "KYC_DATA_PRESENT", "passed": true, "required": true},
            {"type": "KYC_STATUS", "passed": true, "required": true}
        ],
        "summary": {"passed": 2, "failed": 0, "requiredFailed": []}
    }))
    .unwrap()
}

fn waiting_status() -> ComplianceStatus {
    serde_json::from_value(json!({
        "customerId": "0190f3a0-0000-7000-8000-000000000001",
        "onboardingId": "0190f3a0-0000-7000-8000-0000000000aa",
        "isCompliant": false,
        "onboardingStatus": "PROCESSING",
        "nextAction": "UPLOAD_DOCUMENT",
        "checks": [
            {"type": "KYC_DATA_PRESENT", "passed": true, "required": true},
            {"type": "SDK_VERIFICATION_COMPLETED", "passed": false, "required": false, "suggestedAction": "COMPLETE_SDK_FLOW"},
            {"type": "DOC_SOURCE_OF_FUNDS", "passed": false, "required": true, "suggestedAction": "UPLOAD_DOCUMENT"},
            {"type": "DOC_FATCA", "passed": false, "required": true, "suggestedAction": "UPLOAD_DOCUMENT"}
        ],
        "summary": {"passed": 1, "failed": 3, "requiredFailed": ["DOC_SOURCE_OF_FUNDS", "DOC_FATCA"]},
        "sdk": {"link": "http://127.0.0.1:9/sdk/t", "expiresAt": "2026-01-02T04:00:00Z"}
    }))
    .unwrap()
}

fn rows(status: Option<ComplianceStatus>) -> CustomerRows {
    let workflow = status
        .as_ref()
        .map(|s| (WorkflowView::from_status(s), datetime!(2026-01-02 03:30:00 UTC)));
    CustomerRows {
        customer: customer("crm-1"),
        status: status.map(|s| (s, datetime!(2026-01-02 03:31:00 UTC))),
        workflow,
        uploads: Vec::new(),
        first_seen: None,
        stage_lines: Vec::new(),
    }
}

#[test]
fn a_customer_the_cache_knows_nothing_of_but_the_body_has_empty_cells() {
    let record = record(&rows(None), false);
    assert_eq!(record.customer_id, "0190f3a0-0000-7000-8000-000000000001");
    assert_eq!(record.external_id.as_deref(), Some("crm-1"));
    assert_eq!(
        (
            &record.stage,
            &record.onboarding_status,
            &record.is_compliant,
            &record.failed_checks,
            &record.stage_since,
            &record.first_seen,
            &record.decided_at,
            &record.sdk_link_expires_at
        ),
        (&None, &None, &None, &None, &None, &None, &None, &None)
    );
    assert_eq!(record.documents, "");
}

#[test]
fn decided_at_is_the_stage_line_that_saw_the_move_and_never_a_first_sighting() {
    let mut approved = rows(Some(approved_status()));
    approved.first_seen = Some(datetime!(2026-01-02 03:05:00 UTC));
    approved.stage_lines = vec![(datetime!(2026-01-02 03:05:00 UTC), "first seen: approved".into())];
    let record = record(&approved, false);
    assert_eq!(record.stage.as_deref(), Some("approved"));
    assert_eq!(record.decided_at, None, "first seen already decided: unknown");
    assert_eq!(record.first_seen.as_deref(), Some("2026-01-02T03:05:00Z"));

    approved.stage_lines = vec![
        (
            datetime!(2026-01-02 03:05:00 UTC),
            "first seen: collecting_requirements".into(),
        ),
        (
            datetime!(2026-01-02 03:20:00 UTC),
            "collecting_requirements → awaiting_decision".into(),
        ),
        (
            datetime!(2026-01-02 03:21:07 UTC),
            "awaiting_decision → approved".into(),
        ),
    ];
    let record = super::record(&approved, false);
    assert_eq!(record.decided_at.as_deref(), Some("2026-01-02T03:21:07Z"));
    assert_eq!(record.stage_since.as_deref(), Some("2026-01-02T03:30:00Z"));
    assert_eq!(record.is_compliant, Some(true));
    assert_eq!(record.failed_checks.as_deref(), Some(""));
    assert_eq!(record.onboarding_status.as_deref(), Some("APPROVED"));
    assert_eq!(record.next_action, None);

    // A stage line to the other decision says nothing of this one.
    approved.stage_lines.truncate(2);
    approved.stage_lines.push((
        datetime!(2026-01-02 03:21:07 UTC),
        "awaiting_decision → denied".into(),
    ));
    assert_eq!(super::record(&approved, false).decided_at, None);
}

#[test]
fn an_open_onboarding_has_its_failed_required_checks_its_link_and_no_decision() {
    let mut waiting = rows(Some(waiting_status()));
    waiting.stage_lines = vec![(
        datetime!(2026-01-02 03:21:07 UTC),
        "awaiting_decision → approved".into(),
    )];
    let record = record(&waiting, false);
    assert_eq!(record.stage.as_deref(), Some("collecting_requirements"));
    assert_eq!(
        record.failed_checks.as_deref(),
        Some("DOC_SOURCE_OF_FUNDS;DOC_FATCA")
    );
    assert_eq!(record.next_action.as_deref(), Some("UPLOAD_DOCUMENT"));
    assert_eq!(
        record.sdk_link_expires_at.as_deref(),
        Some("2026-01-02T04:00:00Z")
    );
    assert_eq!(record.decided_at, None, "not decided, whatever a line says");
}

#[test]
fn documents_are_the_newest_upload_of_each_type_by_type_name() {
    let mut customer = rows(None);
    let upload = |document_type: &str, sha256: &str, at| UploadRow {
        document_type: document_type.into(),
        sha256: sha256.into(),
        at,
    };
    customer.uploads = vec![
        upload("W9", &"a".repeat(64), datetime!(2026-01-02 03:00:00 UTC)),
        upload(
            "SOURCE_OF_FUNDS",
            &"b".repeat(64),
            datetime!(2026-01-02 03:01:00 UTC),
        ),
        upload("W9", &"c".repeat(64), datetime!(2026-01-02 03:02:00 UTC)),
    ];
    assert_eq!(
        record(&customer, false).documents,
        "SOURCE_OF_FUNDS:bbbbbbbbbbbb;W9:cccccccccccc"
    );
}

#[test]
fn personal_data_only_with_include_pii() {
    let customer = rows(Some(approved_status()));
    let mut without = Vec::new();
    write_csv(&[record(&customer, false)], false, &mut without).unwrap();
    let without = String::from_utf8(without).unwrap();
    for personal in [
        "Ada",
        "Lovelace",
        "ada@example.com",
        "1990-04-12",
        "Main St",
        "X1234567",
        "203.0.113.7",
    ] {
        assert!(!without.contains(personal), "{personal} in {without}");
    }
    let mut ndjson = Vec::new();
    write_ndjson(&[record(&customer, false)], &mut ndjson).unwrap();
    assert!(!String::from_utf8(ndjson).unwrap().contains("Ada"));

    let with = record(&customer, true);
    let mut csv = Vec::new();
    write_csv(std::slice::from_ref(&with), true, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",sdkLinkExpiresAt,name,email,birthDate,address,documentNumber,ipAddress")
    );
    assert!(
        lines.next().unwrap().ends_with(
            ",Ada Lovelace,ada@example.com,1990-04-12,\"123 Main St, New York, NY, 10001, US\",X1234567,203.0.113.7"
        ),
        "{csv}"
    );
    let json = serde_json::to_value(&with).unwrap();
    assert_eq!(json["name"], "Ada Lovelace");
    assert_eq!(json["ipAddress"], "203.0.113.7");
}

#[test]
fn formula_like_cells_are_neutralised_in_csv_only() {
    for cell in [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "=HYPERLINK(\"http://x\")",
    ] {
        assert_eq!(neutralise(cell), format!("'{cell}"));
    }
    for cell in ["", "crm-1", "2026-01-02T03:04:05Z", "a=b", "W9:abc"] {
        assert_eq!(neutralise(cell), cell);
    }
    let mut rows = rows(None);
    rows.customer.external_id = Some("=HYPERLINK(\"http://x\")".into());
    let record = record(&rows, false);
    let mut csv = Vec::new();
    write_csv(std::slice::from_ref(&record), false, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains(",\"'=HYPERLINK(\"\"http://x\"\")\","), "{csv}");
    let mut ndjson = Vec::new();
    write_ndjson(&[record], &mut ndjson).unwrap();
    let line: serde_json::Value = serde_json::from_slice(&ndjson).unwrap();
    assert_eq!(line["externalId"], "=HYPERLINK(\"http://x\")");
}

#[test]
fn csv_is_rfc_4180_with_a_header_and_crlf() {
    let mut csv = Vec::new();
    write_csv(&[record(&rows(Some(approved_status())), false)], false, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with(&format!("{}\r\n", COLUMNS.join(","))), "{csv}");
    assert!(csv.ends_with("\r\n"));
    assert_eq!(csv.matches("\r\n").count(), 2);
}

#[cfg(unix)]
#[test]
fn a_file_is_written_whole_and_private_replacing_the_old_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_atomically(&path, b"new").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left behind");
    assert!(write_atomically(&dir.path().join("missing/export.csv"), b"x").is_err());
}
