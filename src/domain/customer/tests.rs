use super::*;
use serde_json::json;
use time::macros::{date, datetime};

const TODAY: Date = date!(2026 - 11 - 27);

fn full_profile() -> Value {
    json!({
        "externalId": "acme-42",
        "email": "ada@example.com",
        "ipAddress": "203.0.113.7",
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
    })
}

fn fields(err: ValidationErrors) -> Vec<String> {
    err.0.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_full_profile_is_valid_and_round_trips() {
    let profile = CustomerProfile::from_json(full_profile(), TODAY).expect("valid");
    assert_eq!(serde_json::to_value(&profile).unwrap(), full_profile());
    assert!(Kyc::missing_identity_fields(profile.kyc.as_ref()).is_empty());
}

#[test]
fn an_empty_profile_is_valid() {
    let profile = CustomerProfile::from_json(json!({}), TODAY).expect("valid");
    assert_eq!(profile, CustomerProfile::default());
}

#[test]
fn every_invalid_field_is_reported_with_its_path() {
    let body = json!({
        "email": "not-an-email",
        "ipAddress": "300.1.1.1",
        "kyc": {
            "firstName": "  ",
            "birthDate": "1990-02-30",
            "nationality": "USA",
            "occupation": "12",
            "mainAddress": {"countryCode": "us", "zip": ""}
        }
    });
    let err = CustomerProfile::from_json(body, TODAY).unwrap_err();
    assert_eq!(
        fields(err),
        [
            "email",
            "ipAddress",
            "kyc.firstName",
            "kyc.birthDate",
            "kyc.nationality",
            "kyc.occupation",
            "kyc.mainAddress.zip",
            "kyc.mainAddress.countryCode",
        ]
    );
}

#[test]
fn birth_date_must_be_in_the_past() {
    for (value, ok) in [
        ("2026-11-26", true),
        ("2026-11-27", false),
        ("2030-01-01", false),
        ("1899-12-31", false),
        ("1990-4-12", false),
        ("12/04/1990", false),
    ] {
        let body = json!({"kyc": {"birthDate": value}});
        assert_eq!(CustomerProfile::from_json(body, TODAY).is_ok(), ok, "{value}");
    }
}

#[test]
fn country_codes_are_assigned_alpha2_codes() {
    assert!(is_country_code("US"));
    assert!(is_country_code("DE"));
    assert!(!is_country_code("ZZ"));
    assert!(!is_country_code("us"));
    assert!(!is_country_code("USA"));
}

#[test]
fn wrong_types_and_unknown_fields_name_the_field() {
    let err = CustomerProfile::from_json(json!({"kyc": {"mainAddress": {"zip": 10001}}}), TODAY).unwrap_err();
    assert_eq!(fields(err), ["kyc.mainAddress.zip"]);
    let err = CustomerProfile::from_json(json!({"kyc": {"fristName": "Ada"}}), TODAY).unwrap_err();
    assert_eq!(err.0[0].field, "kyc.fristName");
    assert!(err.0[0].message.contains("fristName"), "{}", err.0[0].message);
    let err = CustomerProfile::from_json(json!([1, 2]), TODAY).unwrap_err();
    assert_eq!(fields(err), [""]);
    let err = CustomerProfile::from_json(json!({"kyc": {"mainAddress": [null, null]}}), TODAY).unwrap_err();
    assert_eq!(fields(err), ["kyc.mainAddress"]);
    let err = CustomerProfile::from_json(json!({"kyc": ["Ada"]}), TODAY).unwrap_err();
    assert_eq!(fields(err), ["kyc"]);
}

fn customer() -> Customer {
    let profile = CustomerProfile::from_json(full_profile(), TODAY).unwrap();
    Customer::new(Uuid::nil(), profile, datetime!(2026-11-01 10:00 UTC))
}

#[test]
fn merge_patch_merges_kyc_deeply_and_null_removes() {
    let patch = json!({
        "email": null,
        "kyc": {"mainAddress": {"street2": "Apt 4", "zip": null}, "occupation": "15"}
    });
    let profile = customer().merge_patch(&patch, TODAY).expect("valid patch");
    let kyc = profile.kyc.expect("kyc kept");
    assert_eq!(profile.email, None);
    assert_eq!(kyc.first_name.as_deref(), Some("Ada"));
    assert_eq!(kyc.occupation.as_deref(), Some("15"));
    let address = kyc.main_address.expect("address kept");
    assert_eq!(address.street1.as_deref(), Some("123 Main St"));
    assert_eq!(address.street2.as_deref(), Some("Apt 4"));
    assert_eq!(address.zip, None);
}

#[test]
fn merge_patch_validates_the_result_and_changes_nothing_when_refused() {
    let before = customer();
    let err = before
        .merge_patch(&json!({"kyc": {"nationality": "XX"}}), TODAY)
        .unwrap_err();
    assert_eq!(fields(err), ["kyc.nationality"]);
    assert_eq!(before, customer());
}

#[test]
fn merge_patch_refuses_read_only_fields_and_non_objects() {
    let err = customer()
        .merge_patch(&json!({"id": "x", "createdAt": "y"}), TODAY)
        .unwrap_err();
    assert_eq!(fields(err), ["id", "createdAt"]);
    assert!(customer().merge_patch(&json!("kyc"), TODAY).is_err());
}

#[test]
fn null_kyc_removes_all_kyc_data() {
    let profile = customer().merge_patch(&json!({"kyc": null}), TODAY).unwrap();
    assert_eq!(profile.kyc, None);
    assert_eq!(
        Kyc::missing_identity_fields(profile.kyc.as_ref()),
        [
            "kyc.firstName",
            "kyc.lastName",
            "kyc.birthDate",
            "kyc.documentNumber"
        ]
    );
}
