//! Atomic file writes: a temp file beside the target, then a rename, so a crash never leaves
//! a half-written report.
//!
//! The temp file comes from `tempfile`: a random name created exclusively (`O_EXCL`), so a
//! file or symlink planted at a guessable name cannot redirect the write, and it is deleted
//! when anything fails before the rename (a full disk leaves no orphan).

use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates 0600 files; reports should be as readable as `File::create` makes
    // them, so ask for 0666 and let the umask narrow it.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // On failure the `PersistError` still owns the temp file, and dropping it deletes it.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("symbiote-write-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn writes_and_replaces_without_leaving_temp_files() {
        let dir = scratch("replace");
        let path = dir.join("sub").join("report.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(path.parent().unwrap()), vec!["report.json"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    // See: issue 14
    #[cfg(unix)]
    #[test]
    fn issue_14_a_symlink_planted_at_the_old_temp_name_is_not_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        // The name the old code wrote through: `.report.json.tmp<pid>`.
        let planted = dir.join(format!(".report.json.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&dir.join("report.json"), b"report").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(std::fs::read(dir.join("report.json")).unwrap(), b"report");
        assert!(std::fs::symlink_metadata(&planted).unwrap().file_type().is_symlink());
        std::fs::remove_dir_all(dir).unwrap();
    }

    // See: issue 14
    #[test]
    fn issue_14_a_failed_write_leaves_no_temp_file() {
        let dir = scratch("fail");
        // The rename fails after the temp file is written: the target is a non-empty folder.
        let target = dir.join("report.json");
        std::fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"report").is_err());
        assert_eq!(names(&dir), vec!["report.json"]);
        // A parent that is a file fails before any temp file exists.
        std::fs::write(dir.join("plain"), b"").unwrap();
        assert!(write_atomic(&dir.join("plain").join("report.json"), b"report").is_err());
        assert_eq!(names(&dir), vec!["plain", "report.json"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    // See: issue 14
    #[cfg(unix)]
    #[test]
    fn issue_14_reports_stay_readable_like_plain_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        write_atomic(&dir.join("report.json"), b"report").unwrap();
        std::fs::write(dir.join("plain"), b"").unwrap();
        let mode = |name: &str| std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("report.json"), mode("plain"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
