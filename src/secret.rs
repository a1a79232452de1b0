//! The one way a secret (an API key, a webhook signing secret) is shown: enough of its start to
//! tell it apart from another, never enough to use it.

/// At most half the secret, and at most 10 characters (`whsec_` and 4 more), then `…`.
pub fn hint(secret: &str) -> String {
    let shown: String = secret
        .chars()
        .take((secret.chars().count() / 2).min(10))
        .collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn a_hint_tells_secrets_apart_without_giving_them_away() {
        assert_eq!(hint("sk_test_kycdash"), "sk_test…");
        assert_eq!(hint("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "whsec_MfKQ…");
        assert_eq!(hint("ab"), "a…");
        assert_eq!(hint(""), "…");
        // Never more than half: a short secret is not shown whole.
        assert!(hint("abcdef").chars().count() <= 4);
    }
}
