//! Splitting long texts into messages Telegram accepts.
//!
//! `sendMessage` takes at most 4096 characters. Telegram's server counts Unicode code points,
//! its entity offsets count UTF-16 code units; we count UTF-16 units, which is never fewer, so
//! every part is accepted whichever rule applies. Cuts prefer a paragraph break, then a line
//! break, then a sentence end, then a space, and only then a hard cut — which still falls on a
//! character boundary (never inside a surrogate pair) and not inside a joined emoji sequence.

/// The `sendMessage` text limit.
pub const MAX_TEXT_UNITS: usize = 4096;

/// Length of `text` in UTF-16 code units, the way Telegram clients and entity offsets count.
#[must_use]
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits `text` into parts of at most `limit` UTF-16 units, dropping the whitespace at each cut
/// and any part that would be blank.
#[must_use]
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if utf16_len(rest) <= limit {
            parts.push(rest.to_owned());
            break;
        }
        let window = prefix_within(rest, limit);
        let cut = best_cut(rest, window);
        let part = rest[..cut].trim_end();
        if !part.is_empty() {
            parts.push(part.to_owned());
        }
        rest = rest[cut..].trim_start();
    }
    parts
}

/// The byte length of the longest prefix of `text` that fits `limit` UTF-16 units.
fn prefix_within(text: &str, limit: usize) -> usize {
    let mut units = 0;
    for (index, c) in text.char_indices() {
        units += c.len_utf16();
        if units > limit {
            return index;
        }
    }
    text.len()
}

/// Where to cut `text` within its first `window` bytes (a prefix that fits): a byte index on a
/// char boundary, never zero.
fn best_cut(text: &str, window: usize) -> usize {
    let window = &text[..window];
    let half = window.len() / 2;
    let candidates = [
        window.rfind("\n\n").map(|i| i + 2),
        window.rfind('\n').map(|i| i + 1),
        sentence_end(window),
        window.rfind(char::is_whitespace).map(|i| i + 1),
    ];
    if let Some(cut) = candidates.iter().flatten().find(|&&cut| cut >= half) {
        return *cut;
    }
    if let Some(cut) = candidates
        .iter()
        .flatten()
        .copied()
        .filter(|&c| c > 0)
        .max()
    {
        return cut;
    }
    hard_cut(text, window.len())
}

/// The end of the last sentence in `window` (after `.`, `!`, `?` or `…` and a space).
fn sentence_end(window: &str) -> Option<usize> {
    let bytes = window.as_bytes();
    window
        .char_indices()
        .rev()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?' | '…')
                && window[i + c.len_utf8()..].starts_with(char::is_whitespace)
                && i + c.len_utf8() < bytes.len()
        })
        .map(|(i, c)| i + c.len_utf8() + 1)
}

/// A cut at the end of `window`, moved back so that a zero-width joiner or a variation selector
/// stays with the emoji it belongs to.
fn hard_cut(text: &str, window: usize) -> usize {
    let mut cut = window;
    while let Some(last) = text[..cut].chars().next_back() {
        let joined =
            matches!(last, '\u{200D}') || text[cut..].starts_with(['\u{200D}', '\u{FE0F}']);
        if !joined || cut <= last.len_utf8() {
            break;
        }
        cut -= last.len_utf8();
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_text("hello", 10), vec!["hello"]);
        assert!(split_text("   ", 10).is_empty());
    }

    #[test]
    fn a_paragraph_break_is_preferred_over_a_line_break() {
        let text = format!(
            "{}\n\n{}\n{}",
            "a".repeat(60),
            "b".repeat(20),
            "c".repeat(30)
        );
        let parts = split_text(&text, 100);
        assert_eq!(
            parts,
            vec![
                "a".repeat(60),
                format!("{}\n{}", "b".repeat(20), "c".repeat(30))
            ]
        );
    }

    #[test]
    fn a_line_break_then_a_sentence_then_a_word_is_chosen() {
        let line = format!("{}\n{}", "a".repeat(70), "b".repeat(40));
        assert_eq!(split_text(&line, 100)[0], "a".repeat(70));
        let sentence = format!("{}. {} {}", "a".repeat(60), "b".repeat(10), "c".repeat(40));
        assert_eq!(
            split_text(&sentence, 100)[0],
            format!("{}.", "a".repeat(60))
        );
        let words = format!("{} {} {}", "a".repeat(60), "b".repeat(30), "c".repeat(40));
        assert_eq!(
            split_text(&words, 100)[0],
            format!("{} {}", "a".repeat(60), "b".repeat(30))
        );
    }

    #[test]
    fn an_early_break_is_not_taken_when_a_later_one_fits() {
        // The only paragraph break is in the first half; the word break near the end wins.
        let text = format!("ab\n\n{} {}", "c".repeat(80), "d".repeat(40));
        assert_eq!(
            split_text(&text, 100)[0],
            format!("ab\n\n{}", "c".repeat(80))
        );
    }

    #[test]
    fn a_text_without_breaks_is_cut_hard_at_the_limit() {
        let parts = split_text(&"x".repeat(250), 100);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
    }

    #[test]
    fn emoji_count_two_units() {
        assert_eq!(utf16_len("😆👍"), 4);
        assert_eq!(utf16_len("é"), 1);
    }

    #[test]
    fn a_hard_cut_never_splits_a_surrogate_pair() {
        let parts = split_text(&"😀".repeat(5), 3);
        assert_eq!(parts, vec!["😀", "😀", "😀", "😀", "😀"]);
    }

    #[test]
    fn a_zwj_sequence_is_not_cut_after_its_joiner() {
        // woman + ZWJ + laptop: cut must not leave the joiner at the end of a part.
        let text = format!("{}{}", "x".repeat(3), "👩\u{200D}💻");
        for part in split_text(&text, 6) {
            assert!(!part.ends_with('\u{200D}'), "{part:?}");
        }
    }
}
