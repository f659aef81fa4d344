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
         # commits in the cached tree and keeps the comment block above each patch.\n\
         # Names follow Debian's debian/patches: d- for what upstream does not need\n\
         # (it has its own implementation, or the change is a policy of this series),\n\
         # u- for a fix meant for upstream, as each patch's Forwarded: field says.\n",
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

/// The value of the one `Forwarded:` in a patch's DEP-3 pseudo-header, as
/// `dep3_fields` reads it; `None` without one, or with more than one.
pub fn forwarded(patch: &str) -> Option<String> {
    let mut values =
        dep3_fields(patch).into_iter().filter(|(key, _)| key == "Forwarded").map(|(_, value)| value);
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value.trim().to_string()),
        _ => None,
    }
}

/// The name Debian gives a patch in its `debian/patches/series`: `u-` for a
/// patch meant for, or sent, upstream (`Forwarded:` anything but
/// `not-needed`), `d-` for one that is not (`not-needed`: upstream has its
/// own implementation, or it is a policy of this series).
pub fn debian_name(stem: &str, forwarded: Option<&str>) -> String {
    let prefix = if forwarded == Some("not-needed") { "d-" } else { "u-" };
    format!("{prefix}{stem}")
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

/// The subject (without `[PATCH]`) and body of a `git format-patch` file.
pub struct PatchMessage {
    /// Read by the house rules only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub subject: String,
    pub body: String,
}

/// The message of a `git format-patch` file; `None` without a `Subject:`.
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

/// The DEP-3 fields of a patch (Debian's patch tagging guidelines), read
/// as DEP-3 reads a `git format-patch` file: `From:` is the Author and
/// `Subject:` the Description (the body is its long part); the other
/// fields are a pseudo-header, the body's last paragraph.
pub fn dep3_fields(patch: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for line in patch.lines().take_while(|l| !l.is_empty()) {
        for key in ["From", "Subject"] {
            if let Some(value) = line.strip_prefix(&format!("{key}: ")) {
                fields.push((key.to_string(), value.to_string()));
            }
        }
    }
    let Some(msg) = message(patch) else { return fields };
    let last = msg.body.rsplit("\n\n").next().unwrap_or_default();
    for line in last.lines() {
        match line.split_once(": ") {
            Some((key, value)) if !key.is_empty() && !key.contains(' ') => {
                fields.push((key.to_string(), value.to_string()))
            }
            // Not a field: the paragraph is no pseudo-header.
            _ => return fields.into_iter().filter(|(k, _)| k == "From" || k == "Subject").collect(),
        }
    }
    fields
}

/// What Debian's tools read, as DEP-3 defines it: a Description; an
/// `Author:`, or else an `Origin:` that says where the patch comes from
/// with a URL, or `vendor, ` and why there is none (this series: no public
/// repository); no `.invalid` address as `From:` or `Author:`; one
/// `Forwarded:` (`not-needed` only for what upstream does not need: its
/// own implementation, or a policy of this series; `no` for a fix of a
/// real upstream bug that is not sent); `Bug:` links, each one https URL; no
/// `Applied-Upstream:`, which would say this very patch was applied
/// upstream (where upstream has different code, the description says
/// "superseded upstream by ..."); and `Last-Update:` as a date.
/// `Upstream-Status:` (OpenEmbedded's field, which Debian's tools ignore)
/// must not come back.
pub fn dep3_problems(patch: &str) -> Vec<String> {
    let fields = dep3_fields(patch);
    let get = |key: &str| fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let mut problems = Vec::new();
    for key in ["From", "Subject", "Forwarded", "Last-Update"] {
        if get(key).len() != 1 {
            problems.push(format!("needs exactly one `{key}:`"));
        }
    }
    match (get("Author").len(), get("Origin").as_slice()) {
        (1, []) => {}
        (0, [origin]) if origin.contains(", https://") => {}
        // DEP-3's keyword for a patch the packager wrote: where no URL
        // exists, the text after it says so.
        (0, [origin]) if origin.strip_prefix("vendor, ").is_some_and(|why| !why.trim().is_empty()) => {}
        (0, [origin]) => problems.push(format!("`Origin: {origin}` names no URL")),
        _ => problems.push("needs one `Author:`, or one `Origin:` with a URL (or `vendor, ` and why)".to_string()),
    }
    // RFC 2606's `.invalid` says "no mailbox": an author nobody can write to
    // is no author; without a mailbox, `From:` carries none and `Origin:`
    // says who made the patch.
    for (key, value) in fields.iter().filter(|(k, _)| k == "From" || k == "Author") {
        if value.trim_end_matches('>').ends_with(".invalid") {
            problems.push(format!("`{key}: {value}` is an address that cannot receive mail"));
        }
    }
    // Two authors for one patch say nothing; a commit amended under another
    // identity shows up here.
    if let ([author], [from]) = (get("Author").as_slice(), get("From").as_slice()) {
        if author != from {
            problems.push(format!("`Author: {author}` is not the patch's `From: {from}`"));
        }
    }
    for value in get("Forwarded") {
        let known = ["no", "not-needed", "yes"].contains(&value) || value.starts_with("https://");
        if !known {
            problems.push(format!("`Forwarded: {value}` is not `no`, `not-needed`, `yes` or a URL"));
        }
    }
    if !get("Applied-Upstream").is_empty() {
        problems.push(
            "`Applied-Upstream:` says this patch was applied upstream; say \"superseded upstream by\" instead"
                .to_string(),
        );
    }
    for url in get("Bug") {
        if !url.starts_with("https://") || url.contains(' ') {
            problems.push(format!("`{url}` is not a single https URL"));
        }
    }
    for date in get("Last-Update") {
        let ok = date.len() == 10
            && date.char_indices().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
        if !ok {
            problems.push(format!("`Last-Update: {date}` is not YYYY-MM-DD"));
        }
    }
    if patch.lines().take_while(|l| *l != "---").any(|l| l.starts_with("Upstream-Status:")) {
        problems.push("`Upstream-Status:` is not a DEP-3 field".to_string());
    }
    problems
}

#[cfg(test)]
mod house_rules {
    //! The series' house rules, checked on the checked-in `patches/`.
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn patches() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("patches")
    }

    /// Each patch of `series`, in its order, with its text.
    fn series_patches() -> Vec<(String, String)> {
        read(&patches())
            .unwrap()
            .into_iter()
            .map(|e| {
                let text = fs::read_to_string(patches().join(&e.name)).unwrap();
                (e.name, text)
            })
            .collect()
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

    /// What `check` finds in each patch file, each prefixed with the file's name.
    fn in_every_patch(check: fn(&str) -> Vec<String>) -> Vec<String> {
        let mut found = Vec::new();
        for name in patch_files() {
            let text = fs::read_to_string(patches().join(&name)).unwrap();
            found.extend(check(&text).into_iter().map(|p| format!("{name}: {p}")));
        }
        found
    }

    /// Debian's naming: `u-` for what is meant for upstream, `d-` for what
    /// is not, from the patch's own `Forwarded:`.
    #[test]
    fn every_patch_is_named_as_debian_names_it() {
        for name in patch_files() {
            let text = fs::read_to_string(patches().join(&name)).unwrap();
            let stem = name.trim_start_matches("u-").trim_start_matches("d-");
            let want = super::debian_name(stem, super::forwarded(&text).as_deref());
            assert_eq!(name, want, "named after `Forwarded: {:?}`", super::forwarded(&text));
        }
    }

    #[test]
    fn forwarded_is_read_from_the_pseudo_header() {
        let patch = "From: A <a@b>\nSubject: [PATCH] x: y\n\nWhy. Forwarded: yes\n\n\
                     Author: A\nForwarded: not-needed\n---\n";
        assert_eq!(super::forwarded(patch).as_deref(), Some("not-needed"));
        assert_eq!(super::debian_name("x.patch", Some("not-needed")), "d-x.patch");
        assert_eq!(super::debian_name("x.patch", Some("no")), "u-x.patch");
        assert_eq!(super::forwarded("From: A <a@b>\nSubject: x: y\n\nWhy.\n---\n"), None);
        // What `git commit --no-edit` leaves after a conflict: the pseudo-header
        // is no longer the last paragraph, so it is not read.
        let conflicted = patch.replace("---\n", "\n# Conflicts:\n#\tx.rs\n---\n");
        assert_eq!(super::forwarded(&conflicted), None);
        let twice = patch.replace("---\n", "Forwarded: no\n---\n");
        assert_eq!(super::forwarded(&twice), None);
    }

    #[test]
    fn every_patch_has_the_dep3_fields_debian_reads() {
        let problems = in_every_patch(dep3_problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn dep3_check_catches_what_is_missing() {
        let good = "From: A <a@b>\nSubject: [PATCH] x: y\n\nWhy.\n\nAuthor: A <a@b>\nForwarded: not-needed\n\
                    Bug: https://example.org/1\nLast-Update: 2026-11-22\n---\n";
        assert_eq!(dep3_problems(good), Vec::<String>::new());
        let old = "From: A <a@b>\nSubject: [PATCH] x: y\n\nWhy.\n\nUpstream-Status: Inappropriate\n---\n";
        let problems = dep3_problems(old);
        assert!(problems.iter().any(|p| p.contains("Upstream-Status")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("Origin")), "{problems:?}");
        let origin = good.replace("Author: A <a@b>", "Origin: other");
        assert!(dep3_problems(&origin).iter().any(|p| p.contains("names no URL")));
        let origin = good.replace("Author: A <a@b>", "Origin: other, https://example.org/x");
        assert_eq!(dep3_problems(&origin), Vec::<String>::new());
        let applied = good.replace("Last-Update", "Applied-Upstream: https://example.org/2\nLast-Update");
        assert!(dep3_problems(&applied).iter().any(|p| p.contains("superseded upstream by")));
        let forwarded = good.replace("not-needed", "maybe");
        assert!(dep3_problems(&forwarded).iter().any(|p| p.contains("Forwarded: maybe")));
        assert_eq!(dep3_problems(&good.replace("not-needed", "no")), Vec::<String>::new());
        let prose = good.replace("Last-Update: 2026-11-22", "Last-Update: soon");
        assert!(dep3_problems(&prose).iter().any(|p| p.contains("YYYY-MM-DD")));
        let other = good.replace("From: A <a@b>", "From: B <b@c>");
        assert!(dep3_problems(&other).iter().any(|p| p.contains("is not the patch's `From:")));
        let vendor = good.replace("Author: A <a@b>", "Origin: vendor, written for this package");
        assert_eq!(dep3_problems(&vendor), Vec::<String>::new());
        let bare = good.replace("Author: A <a@b>", "Origin: vendor, ");
        assert!(dep3_problems(&bare).iter().any(|p| p.contains("names no URL")));
        let nobody = vendor.replace("From: A <a@b>", "From: A <a@b.invalid>");
        assert!(dep3_problems(&nobody).iter().any(|p| p.contains("cannot receive mail")), "{:?}", dep3_problems(&nobody));
        let wrapped = good.replace("Bug: https://example.org/1", "Bug: see https://example.org/1");
        assert!(dep3_problems(&wrapped).iter().any(|p| p.contains("https URL")));
    }

    /// Tidy's style rules (`src/tools/tidy/src/style.rs` of the pinned tree)
    /// on every line the series adds: tidy itself cannot run in Debian's
    /// prepared tree (its dependency check panics on the pruned vendor
    /// directory before the style check starts). The rules: no tab, no
    /// trailing whitespace in `.rs`, `.py`, `.js`, `.sh`, `.c`, `.cpp`, `.h`,
    /// `.md`; at most 100 columns, except in Markdown, in Rust files rustfmt
    /// formats (all but `src/test/` and `src/doc/book/`), in files that say
    /// `ignore-tidy-linelength`, and on the lines tidy exempts (compiletest's
    /// `//~` annotations, lines containing `// CHECK`, `// compile-flags`,
    /// `// error-pattern`, ..., and long URLs).
    pub(crate) fn tidy_style_violations(patch: &str) -> Vec<String> {
        // Files whose added lines turn the length rule off.
        let mut ignore_length = BTreeSet::new();
        let mut file = String::new();
        for line in patch.lines() {
            if let Some(path) = line.strip_prefix("+++ b/") {
                file = path.to_string();
            } else if line.starts_with('+') && line.contains("ignore-tidy-linelength") {
                ignore_length.insert(file.clone());
            }
        }
        let mut bad = Vec::new();
        let mut file = String::new();
        for line in patch.lines() {
            if let Some(path) = line.strip_prefix("+++ ") {
                file = path.strip_prefix("b/").unwrap_or(path).to_string();
                continue;
            }
            let Some(added) = line.strip_prefix('+') else { continue };
            if !EXTENSIONS.iter().any(|e| file.ends_with(e)) {
                continue;
            }
            let what = if added.contains('\t') {
                Some("tab character".to_string())
            } else if added.ends_with(' ') {
                Some("trailing whitespace".to_string())
            } else {
                let long = too_long(&file, added) && !ignore_length.contains(&file);
                long.then(|| format!("{} columns", added.chars().count()))
            };
            if let Some(what) = what {
                bad.push(format!("{file}: {what}: {added}"));
            }
        }
        bad
    }

    /// The lines a later patch removes (or changes) that an earlier patch of
    /// the series added, as `(later, earlier, file, lines)`: a reviewer reads
    /// those as a series that revises itself. Lines are compared by their
    /// trimmed text; blank lines, lone braces and other lines of under four
    /// characters are too common to say anything.
    pub(crate) fn rewrites(patches: &[(String, String)]) -> Vec<(String, String, String, usize)> {
        let trivial = |t: &str| t.len() < 4 || ["{", "}", "});", "},", ");"].contains(&t);
        // file -> line -> the first patch that added it
        let mut added: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut found: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for (name, text) in patches {
            let mut mine = Vec::new();
            let mut file = None;
            for line in text.lines() {
                if let Some(path) = line.strip_prefix("+++ ") {
                    file = path.strip_prefix("b/").map(str::to_string);
                    continue;
                }
                if line.starts_with("--- ") {
                    continue;
                }
                let Some(file) = &file else { continue };
                let Some(text) = line.get(1..).map(str::trim) else { continue };
                if trivial(text) {
                    continue;
                }
                if line.starts_with('-') {
                    if let Some(earlier) = added.get(file).and_then(|lines| lines.get(text)) {
                        *found.entry((name.clone(), earlier.clone(), file.clone())).or_default() += 1;
                    }
                } else if line.starts_with('+') {
                    mine.push((file.clone(), text.to_string()));
                }
            }
            for (file, text) in mine {
                added.entry(file).or_default().entry(text).or_insert_with(|| name.clone());
            }
        }
        found.into_iter().map(|((later, earlier, file), n)| (later, earlier, file, n)).collect()
    }

    /// One logical change per patch: no patch rewrites what an earlier one
    /// added (the review of v2 found an alignment patch renaming the
    /// lowering's function across five files).
    #[test]
    fn no_patch_rewrites_what_an_earlier_one_added() {
        let found = rewrites(&series_patches());
        assert!(found.is_empty(), "later patch <- earlier patch, file, lines rewritten: {found:#?}");
    }

    #[test]
    fn rewrites_are_found() {
        let first = "+++ b/a.rs\n+let setting = flag;\n+}\n".to_string();
        let second = "--- a/a.rs\n+++ b/a.rs\n-let setting = flag;\n-}\n+let setting = attr.unwrap_or(flag);\n";
        let adds_only = "--- a/a.rs\n+++ b/a.rs\n let setting = flag;\n+let setting = attr.unwrap_or(setting);\n";
        let one = |second: &str| rewrites(&[("1".into(), first.clone()), ("2".into(), second.to_string())]);
        assert_eq!(one(second), vec![("2".into(), "1".into(), "a.rs".into(), 1)]);
        assert_eq!(one(adds_only), vec![]);
        // The same line in another file is another line.
        assert_eq!(one(&second.replace("a.rs", "b.rs")), vec![]);
    }

    /// Extensions whose files tidy's style check reads.
    const EXTENSIONS: &[&str] = &[".rs", ".py", ".js", ".sh", ".c", ".cpp", ".h", ".md"];

    /// Whether tidy's length rule refuses `line` in `file` (without an
    /// `ignore-tidy-linelength`): over 100 columns, in a file tidy measures
    /// (not Markdown, not a Rust file rustfmt formats), and not a line tidy
    /// exempts (an annotation, a long URL).
    fn too_long(file: &str, line: &str) -> bool {
        const EXEMPT: &[&str] = &[
            "// @!has", "// @has", "// @matches", "// CHECK", "// EMIT_MIR", "// compile-flags",
            "// error-pattern", "// gdb", "// lldb", "// cdb", "// normalize-stderr-test",
        ];
        // `\s*//(\[.*\])?~.*` in tidy and compiletest.
        let annotation = line.trim_start().strip_prefix("//").map_or(false, |r| {
            r.starts_with('~') || (r.starts_with('[') && r.find("]~").is_some())
        });
        let rustfmt = file.ends_with(".rs") && !file.starts_with("src/test/") && !file.starts_with("src/doc/book/");
        let url = (line.contains("http://") || line.contains("https://")) && !line.trim().contains(' ');
        line.chars().count() > 100
            && !file.ends_with(".md")
            && !rustfmt
            && !annotation
            && !EXEMPT.iter().any(|e| line.contains(e))
            && !url
    }

    /// Files the series creates that say `ignore-tidy-linelength` although
    /// none of their lines breaks the length rule: tidy refuses those too
    /// ("ignoring line length unnecessarily").
    pub(crate) fn unneeded_length_ignores(patches: &[String]) -> Vec<String> {
        // file -> (says ignore-tidy-linelength, has a line that needs it)
        let mut created: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for patch in patches {
            let mut new_file = false;
            let mut file = String::new();
            for line in patch.lines() {
                if line.starts_with("--- ") {
                    new_file = line == "--- /dev/null";
                } else if let Some(path) = line.strip_prefix("+++ b/") {
                    file = path.to_string();
                    if new_file {
                        created.insert(file.clone(), (false, false));
                    }
                } else if let (Some(added), Some(state)) = (line.strip_prefix('+'), created.get_mut(&file)) {
                    state.0 |= added.contains("ignore-tidy-linelength");
                    state.1 |= too_long(&file, added);
                }
            }
        }
        created
            .into_iter()
            .filter(|(file, (ignores, needs))| *ignores && !needs && EXTENSIONS.iter().any(|e| file.ends_with(e)))
            .map(|(file, _)| format!("{file}: ignoring line length unnecessarily"))
            .collect()
    }

    #[test]
    fn no_file_ignores_line_length_unnecessarily() {
        let texts: Vec<String> = series_patches().into_iter().map(|(_, text)| text).collect();
        let found = unneeded_length_ignores(&texts);
        assert!(found.is_empty(), "tidy would refuse:\n{}", found.join("\n"));
    }

    #[test]
    fn unneeded_length_ignores_are_found() {
        let long_check = format!("+// CHECK: {}", "x".repeat(100));
        let long_comment = format!("+// {}", "x".repeat(100));
        let file = |name: &str, lines: &[&str]| {
            format!("--- /dev/null\n+++ b/src/test/codegen/{name}\n+// ignore-tidy-linelength\n{}\n", lines.join("\n"))
        };
        let patches = [file("a.rs", &[&long_check]), file("b.rs", &[&long_comment, &long_check])];
        assert_eq!(unneeded_length_ignores(&patches), vec!["src/test/codegen/a.rs: ignoring line length unnecessarily"]);
    }

    #[test]
    fn every_added_line_keeps_tidys_style_rules() {
        let bad = in_every_patch(tidy_style_violations);
        assert!(bad.is_empty(), "{} lines tidy would reject:\n{}", bad.len(), bad.join("\n"));
    }

    #[test]
    fn tidy_rules_catch_what_tidy_catches() {
        let long = format!("+// PREFIX-DAG: {}", "x".repeat(100));
        let patch = format!(
            "+++ b/src/test/codegen/a.rs\n{long}\n+// CHECK: {0}\n+//~^ ERROR {0}\n+x\t\n+y \n\
             +++ b/compiler/rustc_session/src/lib.rs\n+{0}\n+++ b/src/doc/a.md\n+{0}\n",
            "x".repeat(120)
        );
        let bad = tidy_style_violations(&patch);
        assert_eq!(bad.len(), 3, "{bad:#?}");
        assert!(bad[0].contains("columns") && bad[1].contains("tab") && bad[2].contains("trailing"));
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
