//! How times and sizes read on screen: `3s ago`, `29:41` left, `14:02:07`, `2.3 MB`.

use time::OffsetDateTime;

/// `3s`, `4m`, `2h`, `5d`.
pub fn ago(duration: time::Duration) -> String {
    let s = duration.whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `29:41`, or `expired`.
pub fn countdown(left: time::Duration) -> String {
    let s = left.whole_seconds();
    if s <= 0 {
        return "expired".into();
    }
    if s >= 3600 {
        return format!("{}h{:02}m", s / 3600, (s % 3600) / 60);
    }
    format!("{}:{:02}", s / 60, s % 60)
}

/// When an SDK link ends, from the time `left` until it does: `expires in 29:41`, or once
/// past, `expired 3m ago`.
pub fn expiry(left: time::Duration) -> String {
    if left.is_positive() {
        format!("expires in {}", countdown(left))
    } else {
        format!("expired {} ago", ago(-left))
    }
}

/// The time of day on this machine's clock.
pub fn clock(at: OffsetDateTime) -> String {
    let at = crate::local_time::local(at);
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// `14:02` on this machine's clock.
pub fn clock_minutes(at: OffsetDateTime) -> String {
    let at = crate::local_time::local(at);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// The time of day if it was today, else the date too (`Nov 28 14:02`).
pub fn when(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let (at, now) = (crate::local_time::local(at), crate::local_time::local(now));
    if at.date() == now.date() {
        clock(at)
    } else {
        format!(
            "{} {:>2} {:02}:{:02}",
            &at.month().to_string()[..3],
            at.day(),
            at.hour(),
            at.minute()
        )
    }
}

/// `812 B`, `14 KB`, `2.3 MB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KB", bytes / 1024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

pub fn short_url(url: &str) -> &str {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url)
}
