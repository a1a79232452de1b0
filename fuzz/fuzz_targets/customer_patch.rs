//! A customer body, then an RFC 7396 merge patch, each validated (SPEC §2): never a panic;
//! whatever validation accepts serialises and reads back to the same profile, and passes
//! validation again.
#![no_main]

use arbitrary::Arbitrary;
use kycdash::domain::{Customer, CustomerProfile};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

#[derive(Debug, Arbitrary)]
struct Input {
    body: String,
    patch: String,
}

fn round_trips(profile: &CustomerProfile) {
    let today = NOW.date();
    let text = serde_json::to_string(profile).expect("a profile serialises");
    let value: Value = serde_json::from_str(&text).expect("what we wrote reads back");
    let again = CustomerProfile::from_json(value, today)
        .unwrap_or_else(|e| panic!("accepted {profile:?}, refused once written as {text}: {e}"));
    assert_eq!(&again, profile, "{text}");
    profile.validate(today).expect("accepted means valid");
}

fuzz_target!(|input: Input| {
    let today = NOW.date();
    let Ok(body) = serde_json::from_str::<Value>(&input.body) else {
        return;
    };
    let profile = match CustomerProfile::from_json(body, today) {
        Ok(profile) => profile,
        Err(errors) => {
            assert!(!errors.0.is_empty());
            return;
        }
    };
    round_trips(&profile);
    let customer = Customer::new(uuid::Uuid::from_u128(7), profile, NOW);
    let Ok(patch) = serde_json::from_str::<Value>(&input.patch) else {
        return;
    };
    match customer.merge_patch(&patch, today) {
        Ok(patched) => {
            round_trips(&patched);
            // A patch that changes nothing gives the profile back.
            if patch.as_object().is_some_and(|o| o.is_empty()) {
                assert_eq!(patched, customer.profile());
            }
        }
        Err(errors) => assert!(!errors.0.is_empty()),
    }
});
