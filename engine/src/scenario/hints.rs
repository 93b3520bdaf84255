//! Error messages that name the fix: serde's messages rewritten, did-you-mean suggestions.

/// For an unknown field, the path of the object that holds it (the field is in the message).
pub(super) fn parent_for_unknown(path: &str, message: &str) -> String {
    match message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        Some(field) => path.strip_suffix(field).map_or(path, |p| p.trim_end_matches('.')).to_string(),
        None => path.to_string(),
    }
}

/// Turns serde's message into one that names the fix.
pub(super) fn explain_serde(message: &str, line: usize, column: usize) -> String {
    let at = if line > 0 { format!(" (line {line}, column {column})") } else { String::new() };
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        if let Some(hint) = super::vllm_args::hint_for_field(field) {
            return format!("{hint}{at}");
        }
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match closest(field, &known) {
            Some(best) => format!("unknown field `{field}`; did you mean `{best}`?{at}"),
            None => format!("unknown field `{field}`; known fields: {}{at}", known.join(", ")),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match closest(value, &known) {
            Some(best) => format!("unknown value `{value}`; did you mean `{best}`? (one of {}){at}", known.join(", ")),
            None => format!("unknown value `{value}`; use one of {}{at}", known.join(", ")),
        };
    }
    if message.contains("untagged enum SeedsFile") {
        return format!("seeds must be a list of non-negative integers such as [1, 2, 3] or a range such as {{\"from\": 1, \"to\": 8}}{at}");
    }
    if message.contains("untagged enum") {
        return format!("{message}; check the field's type against `symbiote schema`{at}");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return format!("missing field `{field}`; add it{at}");
    }
    format!("{message}{at}")
}

/// The known name within edit distance 3 of `word`, if any.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(word, k), *k)).filter(|(d, _)| *d <= 3).min().map(|(_, k)| k)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = if ca == cb { prev } else { prev + 1 };
            prev = row[j + 1];
            row[j + 1] = cost.min(row[j] + 1).min(prev + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_is_levenshtein() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("max_num_seq", &["max_num_seqs", "max_model_len"]), Some("max_num_seqs"));
        assert_eq!(closest("zzzzzzzz", &["max_num_seqs"]), None);
    }
}
