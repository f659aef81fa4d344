//! `patches/series`: the one source of the patches' order. Blank lines and
//! `#` comments are allowed; a comment block belongs to the patch after it.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::Path;

pub struct Entry {
    /// The comment lines right above the patch name (kept by `./x refresh`).
    pub comments: Vec<String>,
    pub name: String,
}

pub fn read(patches: &Path) -> Result<Vec<Entry>> {
    let path = patches.join("series");
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut entries = Vec::new();
    let mut comments = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            comments.clear();
        } else if trimmed.starts_with('#') {
            comments.push(line.to_string());
        } else {
            if trimmed.contains(char::is_whitespace) || trimmed.contains('/') {
                bail!("{}: `{trimmed}` is not a patch file name", path.display());
            }
            entries.push(Entry { comments: std::mem::take(&mut comments), name: trimmed.to_string() });
        }
    }
    Ok(entries)
}

pub fn write(patches: &Path, entries: &[Entry]) -> Result<()> {
    let mut text = String::from(
        "# The rustc-pfe series, in order. `./x refresh` rewrites this file from the\n\
         # commits in the cached tree and keeps the comment block above each patch.\n",
    );
    for entry in entries {
        text.push('\n');
        for comment in &entry.comments {
            text.push_str(comment);
            text.push('\n');
        }
        text.push_str(&entry.name);
        text.push('\n');
    }
    write_if_changed(&patches.join("series"), text.as_bytes())
}

/// Writes only when the content differs, so unchanged files keep their mtime.
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}

/// A digest of the series and every patch it lists, to know when the cached
/// tree already holds exactly this series.
pub fn digest(patches: &Path) -> Result<String> {
    let mut stream = fs::read(patches.join("series"))?;
    for entry in read(patches)? {
        let path = patches.join(&entry.name);
        let content = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        stream.extend_from_slice(entry.name.as_bytes());
        stream.extend_from_slice(&(content.len() as u64).to_le_bytes());
        stream.extend_from_slice(&content);
    }
    crate::fetch::sha256_of(&stream)
}

#[cfg(test)]
mod house_rules {
    //! The series' house rules, checked on the checked-in `patches/`.
    use super::*;
    use std::collections::BTreeSet;

    /// The subject (without `[PATCH]`) and body of a `git format-patch` file.
    pub struct PatchMessage {
        pub subject: String,
        pub body: String,
    }

    pub fn message(patch: &str) -> Option<PatchMessage> {
        let mut lines = patch.lines().peekable();
        let mut subject = None;
        // Headers end at the first blank line; a subject may continue on
        // indented lines.
        while let Some(line) = lines.next() {
            if line.is_empty() {
                break;
            }
            if let Some(rest) = line.strip_prefix("Subject: ") {
                let mut s = rest.to_string();
                while let Some(next) = lines.peek() {
                    if next.starts_with(' ') || next.starts_with('\t') {
                        s.push_str(next);
                        lines.next();
                    } else {
                        break;
                    }
                }
                subject = Some(s);
            }
        }
        let subject = subject?;
        let subject = match subject.strip_prefix('[') {
            Some(rest) if subject.starts_with("[PATCH") => rest.split_once("] ")?.1.to_string(),
            _ => subject,
        };
        let body: Vec<&str> = lines.take_while(|l| *l != "---").collect();
        Some(PatchMessage { subject, body: body.join("\n").trim().to_string() })
    }

    fn patches() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("patches")
    }

    fn patch_files() -> BTreeSet<String> {
        fs::read_dir(patches())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".patch"))
            .collect()
    }

    #[test]
    fn every_patch_is_in_the_series_and_every_entry_exists() {
        let listed: Vec<String> = read(&patches()).unwrap().into_iter().map(|e| e.name).collect();
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "a patch is listed twice in series");
        let files = patch_files();
        let missing: Vec<_> = unique.difference(&files).collect();
        let unlisted: Vec<_> = files.difference(&unique).collect();
        assert!(missing.is_empty(), "listed in series but not in patches/: {missing:?}");
        assert!(unlisted.is_empty(), "in patches/ but not listed in series: {unlisted:?}");
        assert!(!listed.is_empty(), "the series is empty");
    }

    #[test]
    fn every_patch_has_a_crate_summary_subject_and_a_why() {
        for name in patch_files() {
            let text = fs::read_to_string(patches().join(&name)).unwrap();
            let msg = message(&text).unwrap_or_else(|| panic!("{name}: no Subject header"));
            let (area, summary) = msg
                .subject
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: subject `{}` is not `crate: summary`", msg.subject));
            assert!(
                !area.is_empty() && !area.contains(char::is_whitespace),
                "{name}: `{area}` is not a crate or area name"
            );
            assert!(summary.len() >= 10, "{name}: summary `{summary}` says too little");
            assert!(
                msg.body.split_whitespace().count() >= 15,
                "{name}: the body must say why (it has {} words)",
                msg.body.split_whitespace().count()
            );
            for line in msg.body.lines() {
                assert!(line.len() <= 76 || line.contains("://"), "{name}: body line over 76 columns: {line}");
            }
        }
    }

    #[test]
    fn message_parses_subject_and_body() {
        let patch = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
                     From: A <a@b>\nSubject: [PATCH] rustc_session: add the\n flag\n\n\
                     Why it matters.\n\nMore.\n---\n x | 1 +\n";
        let msg = message(patch).unwrap();
        assert_eq!(msg.subject, "rustc_session: add the flag");
        assert_eq!(msg.body, "Why it matters.\n\nMore.");
    }
}
