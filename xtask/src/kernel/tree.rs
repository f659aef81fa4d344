//! The kernel tree: Debian's `linux-source-6.1` tarball unpacked, the
//! kernel series (`kernel/patches/`) applied with `patch --fuzz=0`, renamed
//! into place; and `./x test`'s check that the series applies.

use super::Paths;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Debian 12's kernel source: the first kernel with Rust (x86_64 only).
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The directory the tarball unpacks to.
pub const TREE: &str = "linux-source-6.1";

/// The kernel series: `kernel/patches/series`, the patches in order.
fn kernel_patches(ctx: &Ctx) -> PathBuf {
    ctx.root.join("kernel/patches")
}

/// The tarball as found (path, size, mtime): a new `linux-source-6.1`
/// package means a new tree and new builds.
fn tarball_key() -> Result<String> {
    let meta = fs::metadata(TARBALL)
        .with_context(|| format!("cannot read {TARBALL} (package linux-source-6.1)"))?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_secs();
    Ok(format!("{TARBALL} {} {mtime}\n", meta.len()))
}

/// The tarball's key and the kernel series' digest: what the patched tree
/// (and so every kernel config) is made from.
pub fn tree_key(ctx: &Ctx) -> Result<String> {
    let series = crate::series::digest(&kernel_patches(ctx))?;
    Ok(format!("{}kernel series {series}\n", tarball_key()?))
}

/// The files the kernel series touches, relative to the tree: (those it
/// changes, which the tarball has; those it creates).
fn touched_files(patches: &Path) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let (mut changed, mut created) = (BTreeSet::new(), BTreeSet::new());
    for entry in crate::series::read(patches)? {
        let text = fs::read_to_string(patches.join(&entry.name))?;
        let mut old_is_null = false;
        for line in text.lines() {
            if let Some(path) = line.strip_prefix("--- ") {
                old_is_null = path.starts_with("/dev/null");
            } else if let Some(path) = line.strip_prefix("+++ ") {
                let Some(path) = path.split('\t').next().and_then(|p| p.strip_prefix("b/")) else { continue };
                if old_is_null { &mut created } else { &mut changed }.insert(path.to_string());
            }
        }
    }
    Ok((changed, created))
}

/// Applies the kernel series to `tree` with `patch -p1 --fuzz=0` (as
/// `dpkg-source` and quilt would, no fuzz); `dry_run` only checks. A patch
/// that does not apply is named, with patch's own words.
pub fn apply_kernel_series(patches: &Path, tree: &Path, dry_run: bool) -> Result<usize> {
    let entries = crate::series::read(patches)?;
    for entry in &entries {
        let file = patches.join(&entry.name);
        let mut patch = Command::new("patch");
        patch.args(["-p1", "--fuzz=0", "--forward", "--batch", "--quiet", "-i"]).arg(&file).current_dir(tree);
        if dry_run {
            patch.arg("--dry-run");
        }
        let out = patch.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", cmd::show(&patch)))?;
        if !out.status.success() {
            bail!(
                "the kernel patch {} does not apply to {} (`{}`, {}):\n{}{}",
                entry.name,
                tree.display(),
                cmd::show(&patch),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(entries.len())
}

/// Unpacks the tarball, applies the kernel series, and renames the tree
/// into place, so an interrupted unpack or a patch that fails never looks
/// done. The new tree's files keep the tarball's dates, older than the
/// objects built from the last tree, so kbuild would not see a change:
/// with a new tarball the build directories go; with only a new series,
/// every file the old or the new series touched gets a new date instead,
/// and kbuild rebuilds what depends on them.
pub fn unpack(ctx: &Ctx, paths: &Paths) -> Result<()> {
    let key = tree_key(ctx)?;
    let stamp = ctx.state().join("kernel-source");
    let old = fs::read_to_string(&stamp).unwrap_or_default();
    if paths.src().join("Makefile").is_file() && old.starts_with(&key) {
        Step::skip("unpack and patch linux-source-6.1", "unpacked from this tarball, with this series");
        return Ok(());
    }
    let step = Step::start(&format!("unpack {TARBALL} and apply kernel/patches"));
    fs::remove_file(&stamp).ok();
    let scratch = paths.dir.join("unpack.tmp");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    if paths.src().exists() {
        fs::remove_dir_all(paths.src())?;
    }
    let same_tarball = old.starts_with(&tarball_key()?);
    if !same_tarball {
        for entry in fs::read_dir(&paths.dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "build" || name.starts_with("build-") {
                println!("    a new tarball: removing {}", entry.path().display());
                fs::remove_dir_all(entry.path())?;
            }
        }
    }
    fs::create_dir_all(&scratch)?;
    cmd::run(Command::new("tar").args(["--no-same-owner", "-xf", TARBALL, "-C"]).arg(&scratch))?;
    let tree = scratch.join(TREE);
    let applied = apply_kernel_series(&kernel_patches(ctx), &tree, false)?;
    println!("    {applied} kernel patches applied");
    let (changed, created) = touched_files(&kernel_patches(ctx))?;
    let touched: BTreeSet<String> = changed.into_iter().chain(created).collect();
    if same_tarball {
        let before = old.lines().filter_map(|l| l.strip_prefix("touched ")).map(str::to_string);
        let now = std::time::SystemTime::now();
        for path in touched.iter().cloned().chain(before) {
            if let Ok(file) = fs::File::options().write(true).open(tree.join(&path)) {
                file.set_modified(now)?;
            }
        }
    }
    fs::rename(&tree, paths.src()).with_context(|| format!("{TARBALL} did not unpack to {TREE}/"))?;
    fs::remove_dir_all(&scratch)?;
    fs::create_dir_all(ctx.state())?;
    let record: String = touched.iter().map(|t| format!("touched {t}\n")).collect();
    fs::write(&stamp, format!("{key}{record}"))?;
    step.done();
    Ok(())
}

/// `./x test`'s check that the kernel series applies, without fuzz, to the
/// pinned `linux-source-6.1`: only the files the series touches are taken
/// from the tarball (seconds, not the whole tree), into a scratch directory.
#[cfg(any(test, feature = "bench"))]
pub fn series_applies(ctx: &Ctx) -> Result<()> {
    let patches = kernel_patches(ctx);
    // The tarball's files the series changes; not those it creates, even
    // where a later patch changes them again (the x86 part changes the
    // ftrace test's files that an earlier patch creates).
    let (changed, created) = touched_files(&patches)?;
    let touched: BTreeSet<String> = changed.difference(&created).map(|p| format!("{TREE}/{p}")).collect();
    if touched.is_empty() {
        bail!("the kernel series in {} touches no file", patches.display());
    }
    if !Path::new(TARBALL).is_file() {
        bail!("no {TARBALL}: install the package linux-source-6.1 (`./x deps` does)");
    }
    // The tarball's files, taken once per tarball and list of files
    // (decompressing it takes most of a minute), then copied for each run.
    let listed: String = touched.iter().map(|t| format!("{t}\n")).collect();
    let key = crate::fetch::sha256_of(format!("{}{listed}", tarball_key()?).as_bytes())?;
    let pristine = ctx.cache.join("kernel").join(format!("series-base-{}", &key[..16]));
    if !pristine.join(TREE).is_dir() {
        let scratch = ctx.cache.join("kernel").join("series-base.tmp");
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir_all(&scratch)?;
        cmd::run(Command::new("tar").args(["--no-same-owner", "-xf", TARBALL, "-C"]).arg(&scratch).args(&touched))?;
        if pristine.exists() {
            fs::remove_dir_all(&pristine)?;
        }
        fs::rename(&scratch, &pristine)?;
    }
    let dir = crate::paths::scratch(ctx, "kernel-series")?;
    cmd::run(Command::new("cp").arg("-a").arg(pristine.join(TREE)).arg(&dir))?;
    let applied = apply_kernel_series(&patches, &dir.join(TREE), false)?;
    if applied == 0 {
        bail!("the kernel series is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every patch is listed once, and says what and why: a `From:`, a
    /// subject with a `subsystem: ` prefix, a body before the diff.
    #[test]
    fn kernel_patches_are_listed_and_explained() {
        let patches = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/patches");
        let listed: Vec<String> = crate::series::read(&patches).unwrap().into_iter().map(|e| e.name).collect();
        let mut files: Vec<String> = fs::read_dir(&patches)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".patch"))
            .collect();
        files.sort();
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), listed.len(), "a patch is listed twice");
        assert_eq!(sorted, files, "kernel/patches/series and the .patch files differ");
        for name in &listed {
            let text = fs::read_to_string(patches.join(name)).unwrap();
            let (head, diff) = text.split_once("\n--- ").unwrap_or_else(|| panic!("{name}: no diff"));
            assert!(head.starts_with("From: "), "{name}: no From:");
            let subject = head.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_else(|| panic!("{name}: no Subject:"));
            assert!(subject.contains(": ") && subject.len() <= 75, "{name}: subject `{subject}`");
            let body = head.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("");
            assert!(body.lines().count() >= 3, "{name}: the body does not say why");
            assert!(body.lines().all(|l| l.len() <= 75), "{name}: a body line is longer than 75 columns");
            assert!(diff.contains("\n+++ "), "{name}: no diff");
        }
    }

    /// A patch that no longer applies is named, with patch's words, and
    /// nothing is renamed into place (the caller's scratch tree is left).
    #[test]
    fn a_patch_that_does_not_apply_is_named() {
        let tmp = std::env::temp_dir().join(format!("pfe-kseries-{}", std::process::id()));
        let (patches, tree) = (tmp.join("patches"), tmp.join("tree"));
        fs::create_dir_all(&patches).unwrap();
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 2\n").unwrap();
        fs::write(
            patches.join("good.patch"),
            "From: x\nSubject: a: b\n\nwhy\n--- a/Makefile\n+++ b/Makefile\n@@ -1,2 +1,3 @@\n VERSION = 6\n PATCHLEVEL = 2\n+SUBLEVEL = 0\n",
        )
        .unwrap();
        fs::write(
            patches.join("stale.patch"),
            "From: x\nSubject: a: c\n\nwhy\n--- a/Makefile\n+++ b/Makefile\n@@ -1,2 +1,2 @@\n VERSION = 6\n-PATCHLEVEL = 1\n+PATCHLEVEL = 3\n",
        )
        .unwrap();
        fs::write(patches.join("series"), "good.patch\nstale.patch\n").unwrap();
        let dry = format!("{:#}", apply_kernel_series(&patches, &tree, true).unwrap_err());
        assert!(dry.contains("stale.patch"), "{dry}");
        let err = format!("{:#}", apply_kernel_series(&patches, &tree, false).unwrap_err());
        assert!(err.contains("the kernel patch stale.patch does not apply") && err.contains("FAILED"), "{err}");
        assert!(fs::read_to_string(tree.join("Makefile")).unwrap().contains("SUBLEVEL = 0"));
        let (changed, created) = touched_files(&patches).unwrap();
        assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["Makefile"]);
        assert!(created.is_empty());
        fs::remove_dir_all(&tmp).unwrap();
    }
}
