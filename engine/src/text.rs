//! Quoting file contents in messages: a row or field read from a trace or a file is shown
//! clipped, so one huge field cannot flood the terminal or a log.

/// At most this many characters of a quoted value are shown.
pub const CLIP_CHARS: usize = 80;

/// `text` as it may appear inside an error message: unchanged up to [`CLIP_CHARS`]
/// characters, else its first [`CLIP_CHARS`] characters and `…(N bytes)` with its full size.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP_CHARS) {
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
}
