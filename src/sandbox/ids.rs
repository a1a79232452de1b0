//! Ids the sandbox makes.

use uuid::Uuid;

/// A new time-ordered id (UUIDv7). Rows made together sit together in the indexes, so a batch
/// of inserts dirties a few index pages instead of one random page per row (v4 ids made the
/// WAL grow by a page per customer). The random bits come from the thread's generator, not
/// from a system call per id.
pub fn new_id() -> Uuid {
    // A clock set before 1970 stamps ids with the epoch; the random bits keep them unique.
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(u64::try_from(millis).unwrap_or_default(), &random).into_uuid()
}

/// A new webhook event id: `evt_` and a UUIDv7 without dashes.
pub fn new_event_id() -> String {
    format!("evt_{}", new_id().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_version_7_and_distinct() {
        let ids: Vec<Uuid> = (0..1000).map(|_| new_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(ids.iter().all(|id| id.get_timestamp().is_some()));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
