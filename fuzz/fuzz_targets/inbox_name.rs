//! The inbox's reading of a file's path (relative to the inbox) into customer and document
//! type, or a refusal that says how to name it: never a panic, and what it accepts is
//! consistent with the name.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use kycdash::sync::inbox::parse_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new(OsStr::from_bytes(bytes));
    match parse_name(path) {
        Ok(Some(addressed)) => {
            assert!(!addressed.customer.trim().is_empty(), "{path:?}: {addressed:?}");
            let text = path.to_str().expect("an accepted name is UTF-8");
            assert!(
                text.contains(addressed.customer.as_str()),
                "{path:?}: {addressed:?}"
            );
            assert!(
                !path.iter().any(|p| p.as_bytes().starts_with(b".")),
                "{path:?}: a hidden file is never taken"
            );
        }
        Ok(None) => {}
        Err(why) => assert!(!why.is_empty()),
    }
});
