//! Text that came from outside — a provider's error, an account name, a display name, a claim — made safe to
//! store and show.
//!
//! **Invariant:** what [`clean`] returns holds no character that a terminal, a log viewer or a notification
//! daemon interprets: no C0 or C1 control (so no escape sequence, no bell, no carriage return), no DEL, no
//! bidirectional override or isolate (which reorder what a person reads), no zero-width or invisible formatting
//! character. It is one line, without leading or trailing space, and at most the given number of characters.

/// How long a provider's error text may be where it is stored or shown.
pub const MAX_ERROR_CHARS: usize = 300;
/// How long an account or display name may be.
pub const MAX_NAME_CHARS: usize = 120;

/// `text` as one safe line (see the module docs): every control or invisible character removed, runs of
/// whitespace (newlines and tabs included) made one space, trimmed, and cut at `max_chars` characters with `…`.
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if is_hidden(c) {
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if count + needed > max_chars {
            if max_chars > 0 {
                // Room for the ellipsis: drop the last character if needed.
                if count == max_chars {
                    out.pop();
                }
                out.push('…');
            }
            return out;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Whether `text` would come out of [`clean`] unchanged (any length).
pub fn is_clean(text: &str) -> bool {
    clean(text, usize::MAX) == text
}

/// Characters that are not text to show: controls (C0, DEL, C1), bidirectional controls, zero-width and other
/// invisible formatting characters, and the private-use and noncharacter code points that fonts render as nothing
/// predictable.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space, joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'   // bidi isolates
            | '\u{206A}'..='\u{206F}'   // deprecated format characters
            | '\u{FEFF}'                // byte order mark
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation
            | '\u{E000}'..='\u{F8FF}'   // private use
            | '\u{FDD0}'..='\u{FDEF}'   // noncharacters
            | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bells_are_gone() {
        let hostile = "\u{1b}[2J\u{1b}[31mHACKED\u{1b}]0;pwned\u{7}";
        let shown = clean(hostile, 100);
        assert_eq!(shown, "[2J[31mHACKED]0;pwned");
        assert!(shown.chars().all(|c| !c.is_control()));
        assert!(!is_clean(hostile));
        assert!(is_clean(&shown));
    }

    #[test]
    fn bidi_and_invisible_characters_are_gone() {
        // "admin" displayed as "nimda" by a right-to-left override; a zero-width space inside a name.
        assert_eq!(clean("\u{202E}nimda\u{202C} a\u{200B}da", 100), "nimda ada");
        assert_eq!(clean("\u{2066}x\u{2069}\u{FEFF}", 100), "x");
        assert_eq!(clean("\u{9b}31m C1 \u{85}", 100), "31m C1");
    }

    #[test]
    fn whitespace_becomes_one_line() {
        assert_eq!(clean("  two\r\nlines\tand  more  ", 100), "two lines and more");
        assert_eq!(clean("\n\n", 100), "");
    }

    #[test]
    fn length_is_bounded_in_characters() {
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("abcd", 4), "abcd");
        assert_eq!(clean("ab cd", 4), "ab …");
        assert_eq!(clean("ééééé", 3), "éé…");
        assert_eq!(clean("abc", 0), "");
        let long = "x".repeat(10_000);
        assert_eq!(clean(&long, MAX_ERROR_CHARS).chars().count(), MAX_ERROR_CHARS);
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "Ada on TikTok",
            "maya.makes@gmail.com",
            "Łódź — 東京 🎥",
            "invalid_grant: Token has been expired or revoked.",
        ] {
            assert_eq!(clean(text, 200), text);
        }
    }
}
