//! config.toml on arbitrary text: never a panic, and every error names where (the line) or
//! what (the key), the `[keys]` table's too.
#![no_main]

use std::path::Path;

use kycdash::config::{ConfigError, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let path = Path::new("config.toml");
    match parse(text, path) {
        Ok(config) => {
            // What start-up does next with it: the keys, the profile asked for.
            if let Err(why) = kycdash::tui::keymap::Keymap::new(&config.keys) {
                assert!(why.starts_with("keys."), "{why:?} names no key");
            }
            let _ = config.profile(None, path);
            let _ = config.profile(Some("x"), path);
        }
        Err(ConfigError::Invalid { message, .. }) => {
            let lines = text.matches('\n').count() + 1;
            let names_line = message
                .strip_prefix("line ")
                .and_then(|rest| rest.split_once(':'))
                .and_then(|(n, _)| n.parse::<usize>().ok())
                .is_some_and(|n| (1..=lines).contains(&n));
            let names_key = message.starts_with("profiles.");
            assert!(
                names_line || names_key,
                "{message:?} names no line (of {lines}) or key"
            );
        }
        Err(other) => panic!("parsing text gave {other:?}"),
    }
});
