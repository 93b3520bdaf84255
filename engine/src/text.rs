//! Quoting file contents in messages: a row or field read from a trace or a file is shown
//! clipped, so one huge field cannot flood the terminal or a log.

/// At most this many characters of a quoted value are shown.
pub const CLIP_CHARS: usize = 80;

/// `text` as it may appear inside an error message: unchanged up to [`CLIP_CHARS`]
/// characters, else its first [`CLIP_CHARS`] characters and `…(N bytes)` with its full size.
pub fn clip(text: &str) -> String {
    clip_to(text, CLIP_CHARS)
}

/// At most this many characters of a whole message are shown.
pub const MESSAGE_CHARS: usize = 2_000;

/// A finished message as printed: every `` `quoted` `` span clipped, then the whole cut at
/// [`MESSAGE_CHARS`]. The net for messages that quote a file's text without [`clip`] (serde's
/// "unknown field `...`" and the like).
pub fn clip_message(message: &str) -> String {
    let mut out = String::new();
    let mut parts = message.split('`');
    out.push_str(parts.next().unwrap_or_default());
    let mut quoted = true;
    for part in parts {
        out.push('`');
        out.push_str(&if quoted { clip(part) } else { part.to_string() });
        quoted = !quoted;
    }
    clip_to(&out, MESSAGE_CHARS)
}

fn clip_to(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…({} bytes)", &text[..end], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character_boundary() {
        assert_eq!(clip("12x"), "12x");
        let exact = "a".repeat(CLIP_CHARS);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(1_000_000);
        let clipped = clip(&long);
        assert_eq!(clipped, format!("{}…(2000000 bytes)", "é".repeat(CLIP_CHARS)));
    }

    // See: issue 14
    #[test]
    fn issue_14_quoted_spans_and_whole_messages_are_clipped() {
        let big = "x".repeat(1_000_000);
        let message = format!("unknown field `{big}`; did you mean `max_num_seqs`?");
        let x80 = "x".repeat(CLIP_CHARS);
        assert_eq!(
            clip_message(&message),
            format!("unknown field `{x80}…(1000000 bytes)`; did you mean `max_num_seqs`?")
        );
        assert_eq!(clip_message("no quotes, `one` quote`"), "no quotes, `one` quote`");
        // A backtick inside the value upsets the pairing; the length cap still holds.
        let odd = format!("value `a`{big}`");
        assert!(clip_message(&odd).chars().count() < MESSAGE_CHARS + 20);
    }
}
