//! Presenting results in a terminal: aligned tables, relative times, RFC 3339 timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-30T04:12:09Z` for Unix seconds.
pub(crate) use tokenkeep_core::clock::rfc3339;

/// "in 12 min", "3 h ago", "just now".
pub(crate) fn relative(secs: u64, now: u64) -> String {
    let (delta, future) = if secs >= now {
        (secs - now, true)
    } else {
        (now - secs, false)
    };
    let amount = match delta {
        0..=1 => return "just now".to_owned(),
        2..=89 => format!("{delta} s"),
        90..=5_399 => format!("{} min", (delta + 30) / 60),
        5_400..=129_599 => format!("{} h", (delta + 1800) / 3600),
        _ => format!("{} days", (delta + 43_200) / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A size for people: "812 bytes", "14.2 KiB".
pub(crate) fn bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        // Sizes here are at most a few MiB: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let kib = n as f64 / 1024.0;
        format!("{kib:.1} KiB")
    }
}

/// "expires in 12 min", "expired 3 min ago", "no expiry".
pub(crate) fn expiry(expires_at: Option<u64>, now: u64) -> String {
    match expires_at {
        None => "no expiry given".to_owned(),
        Some(at) if at > now => format!("expires {}", relative(at, now)),
        Some(at) => format!("expired {}", relative(at, now)),
    }
}

/// `error`, and while the connection waits for its next attempt, "; retrying in 8 seconds" (or "retrying now"),
/// counted from this moment (to the millisecond: `retry_at` is rounded up to a whole second) to the planned time.
pub(crate) fn with_retry(meta: &tokenkeep_core::store::ConnectionMeta, error: &str) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match meta.planned_retry() {
        Some(at) if at.saturating_mul(1000) > now_ms + 999 => format!(
            "{error}; retrying in {}",
            tokenkeep_core::oauth::human_duration(std::time::Duration::from_millis(at * 1000 - now_ms))
        ),
        Some(_) => format!("{error}; retrying now"),
        None => error.to_owned(),
    }
}

/// Left-aligned columns separated by two spaces; the header is upper-cased.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_uppercase()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(1000, 1000), "just now");
        assert_eq!(relative(1008, 1000), "in 8 s");
        assert_eq!(relative(1000 + 12 * 60, 1000), "in 12 min");
        assert_eq!(relative(1000, 1000 + 3 * 3600), "3 h ago");
        assert_eq!(relative(1000 + 3 * 86_400, 1000), "in 3 days");
        assert_eq!(expiry(Some(900), 1000), "expired 2 min ago");
        assert_eq!(expiry(None, 1000), "no expiry given");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["id", "name"],
            &[vec!["a".into(), "x".into()], vec!["long-id".into(), "y".into()]],
        );
        assert_eq!(t, "ID       NAME\na        x\nlong-id  y");
    }
}
