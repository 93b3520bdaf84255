//! Scenario and case names as file names. A scenario's reports go to `<out>/<file name>/`
//! and each run's files to `runs/<case file name>__seed<N>.json` (and `timeline/`,
//! `requests/`), so every name maps to one safe file name: no path separator, never `.` or
//! `..`, never hidden or empty, bounded in length. Two names that map to the same file name
//! (`a b` and `a_b`, or `A` and `a` on a case-insensitive disk) are refused at validation,
//! so no run silently overwrites another's files.

use super::expand::Expanded;
use super::validate::Ctx;
use crate::text::clip;

/// The longest file name a name maps to, in bytes: run files add `__seed<N>.json` (at most
/// 31 bytes) and file systems allow 255.
const MAX_BYTES: usize = 120;

/// The file name of a scenario or case name: letters, digits and `-_.=` kept, anything else
/// `_`; a leading `.` (hidden, `.`, `..`) or an empty name gets a `_` in front; a name too
/// long is cut and ends with a hash of the whole name.
pub fn file_name(name: &str) -> String {
    let mut slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') { c } else { '_' })
        .collect();
    if slug.is_empty() || slug.starts_with('.') {
        slug.insert(0, '_');
    }
    if slug.len() > MAX_BYTES {
        // Every character is ASCII here, so any byte index is a character boundary.
        slug.truncate(MAX_BYTES - 17);
        slug.push_str(&format!("-{:016x}", super::fnv1a(name.as_bytes())));
    }
    slug
}

/// What two names are compared by: their file names, ignoring case (macOS and Windows
/// disks do).
pub fn collision_key(name: &str) -> String {
    file_name(name).to_ascii_lowercase()
}

/// Refuses cases whose run files would collide. Two cases from the same entry (the same
/// `path`) come from the matrix; two written cases with one name are reported where the
/// names are read.
pub(super) fn check_cases(cases: &[Expanded], ctx: &mut Ctx<'_>) {
    let mut seen: std::collections::BTreeMap<String, (&str, &str)> = std::collections::BTreeMap::new();
    // A matrix repeats each collision once per combination; say it once.
    let mut said = std::collections::BTreeSet::new();
    for (name, _, _, path) in cases {
        let key = collision_key(name);
        let Some(&(first, first_path)) = seen.get(&key) else {
            seen.insert(key, (name, path));
            continue;
        };
        let at = if first_path == path { "matrix".to_string() } else { format!("{path}.name") };
        let message = if first != name {
            format!(
                "cases `{}` ({first_path}) and `{}` ({path}) would write the same files `{}__seed<N>.*`; rename one (file names keep letters, digits and `-_.=`, turn the rest into `_` and ignore case)",
                clip(first),
                clip(name),
                clip(&file_name(name)),
            )
        } else if first_path == path {
            format!(
                "two cases are named `{}`: the matrix repeats a value (or two values print alike); list each value once",
                clip(name)
            )
        } else {
            continue;
        };
        if said.insert((at.clone(), message.clone())) {
            ctx.push(at, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_keep_ordinary_names() {
        assert_eq!(file_name("phase1_config_matrix"), "phase1_config_matrix");
        assert_eq!(file_name("a max_num_seqs=8"), "a_max_num_seqs=8");
        assert_eq!(file_name("v1.2"), "v1.2");
    }

    // See: issue 14
    #[test]
    fn issue_14_no_name_maps_to_a_path_outside_its_folder() {
        for (name, expected) in [
            ("..", "_.."),
            (".", "_."),
            ("", "_"),
            (".hidden", "_.hidden"),
            ("../../etc", "_.._.._etc"),
            ("a/b\\c\0d", "a_b_c_d"),
        ] {
            assert_eq!(file_name(name), expected, "{name:?}");
        }
        let long = "x".repeat(10_000);
        let cut = file_name(&long);
        assert_eq!(cut.len(), MAX_BYTES);
        assert_ne!(cut, file_name(&"x".repeat(9_999)), "the hash keeps long names apart");
        for name in ["..", ".", "", "a/../..", &long, "é/é", "\u{202e}evil"] {
            let slug = file_name(name);
            assert!(!slug.is_empty() && !slug.starts_with('.') && slug.len() <= MAX_BYTES, "{name:?} -> {slug:?}");
            assert!(slug.chars().all(|c| c.is_ascii_alphanumeric() || "-_.=".contains(c)), "{slug:?}");
        }
    }

    fn problems(rest: &str) -> Vec<String> {
        let text = format!(
            r#"{{"name": "t", "base": {{"model": "llama-2-7b", "gpu": "a100-80gb",
                "workload": {{"arrival": {{"rate": 5}}, "num_requests": 10}}}}{rest}}}"#
        );
        match crate::scenario::parse(&text, "t.json") {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    // See: issue 14
    #[test]
    fn issue_14_cases_whose_files_would_collide_are_refused_naming_both() {
        let found = problems(r#", "cases": [{"name": "a b"}, {"name": "a_b"}]"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("at cases[1].name") && found[0].contains("`a b` (cases[0]) and `a_b` (cases[1])"),
            "{found:?}"
        );
        let found = problems(r#", "cases": [{"name": "Big"}, {"name": "big"}]"#);
        assert!(found.len() == 1 && found[0].contains("`Big` (cases[0]) and `big` (cases[1])"), "{found:?}");
        let found = problems(r#", "matrix": {"engine.max_num_seqs": [8, 16, 8]}"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("at matrix:") && found[0].contains("two cases are named `max_num_seqs=8`"),
            "{found:?}"
        );
        // The same name written twice is reported once, where the names are read.
        let found = problems(r#", "cases": [{"name": "a"}, {"name": "a"}]"#);
        assert!(found.len() == 1 && found[0].contains("duplicate case name `a`"), "{found:?}");
        // Names that differ as file names pass, and so do odd ones, made safe.
        assert!(problems(r#", "cases": [{"name": "a b"}, {"name": "a-b"}, {"name": ".."}, {"name": "/"}]"#).is_empty());
    }
}
