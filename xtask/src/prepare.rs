//! Step 3: the base tree, unpacked and prepared the way Debian's
//! `debian/rules` does, as a git repository whose first commit (tag `base`)
//! is the prepared source.

use crate::cmd::{self, Step};
use crate::fetch::{DEBIAN_TARBALL, ORIG_TARBALL};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory the orig tarball unpacks to.
const TOP: &str = "rustc-1.63.0-src";

/// A second worktree of the cached tree `src` at `dir`, detached at `rev` (a
/// commit id: a name like `HEAD` would be the worktree's own), with `src`'s
/// bootstrap `config.toml`: a tree to build or check another revision in
/// without touching `src`'s sources or `build/`.
pub fn worktree(src: &Path, dir: &Path, rev: &str, what: &str) -> Result<()> {
    if !dir.join("x.py").is_file() {
        let step = Step::start(what);
        cmd::output(git(src).args(["worktree", "prune"]))?;
        cmd::output(git(src).args(["worktree", "add", "-q", "--detach"]).arg(dir).arg(rev))?;
        step.done();
    }
    cmd::output(git(dir).args(["checkout", "-q", "--detach", rev]))?;
    let config = fs::read(src.join("config.toml")).context("no config.toml in the cached tree: run `./x build`")?;
    crate::series::write_if_changed(&dir.join("config.toml"), &config)
}

/// A fixed identity and date for the commits the driver makes, so the same
/// base and series give the same commit ids on every machine. No automatic
/// `git gc`: after the base commit's 50,000 loose objects it detaches into
/// the background, and its `reflog expire` holds `HEAD.lock` while the
/// apply step's `git checkout` needs it (seen: a cold `./x build` stopped
/// there with "Unable to create '.git/HEAD.lock': File exists").
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "gc.auto=0"])
        .args(["-c", "user.name=rustc-pfe", "-c", "user.email=rustc-pfe@localhost"])
        .args(["-c", "core.autocrlf=false", "-c", "advice.detachedHead=false"])
        .env("GIT_COMMITTER_DATE", "2022-08-11T00:00:00Z")
        .env("GIT_AUTHOR_DATE", "2022-08-11T00:00:00Z");
    cmd
}

pub fn is_prepared(ctx: &Ctx) -> bool {
    ctx.src().join(".git").is_dir()
        && cmd::output(git(&ctx.src()).args(["rev-parse", "-q", "--verify", "refs/tags/base"])).is_ok()
}

/// Unpacks the orig and Debian tarballs into `dir` and returns the tree.
pub fn unpack(ctx: &Ctx, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    cmd::run(
        Command::new("tar")
            .args(["--no-same-owner", "-xf"])
            .arg(ctx.downloads().join(ORIG_TARBALL))
            .arg("-C")
            .arg(dir),
    )?;
    let tree = dir.join(TOP);
    cmd::run(
        Command::new("tar")
            .args(["--no-same-owner", "-xf"])
            .arg(ctx.downloads().join(DEBIAN_TARBALL))
            .arg("-C")
            .arg(&tree),
    )?;
    Ok(tree)
}

/// `quilt push -a` of `debian/patches/series` in `tree`.
pub fn quilt_push(tree: &Path) -> Result<String> {
    // No fuzz, as dpkg-source applies a 3.0 (quilt) package's patches: a
    // patch that only applies with fuzz would break the packagers' build.
    // No ~/.quiltrc either: its QUILT_PATCHES would win over ours (seen: a
    // developer's quiltrc for another series made this push fail).
    cmd::output(
        Command::new("quilt")
            .args(["--quiltrc", "-", "push", "-a", "-q", "--fuzz=0"])
            .env("QUILT_PATCHES", "debian/patches")
            .env("QUILT_PC", ".pc")
            .current_dir(tree),
    )
}

pub fn run(ctx: &Ctx) -> Result<()> {
    if is_prepared(ctx) {
        Step::skip("prepare the base tree", "tag `base` present");
        return Ok(());
    }
    if ctx.src().exists() {
        bail!(
            "{} exists but has no `base` tag: it is not a tree this driver prepared. \
             Move it away (it may hold work) and run again",
            ctx.src().display()
        );
    }
    let step = Step::start("prepare the base tree as debian/rules does");
    let scratch = ctx.cache.join("prepare.tmp");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?; // a prepare that was interrupted
    }
    let tree = unpack(ctx, &scratch)?;
    quilt_push(&tree).context("applying Debian's patches")?;
    fs::remove_dir_all(tree.join(".pc"))?;
    // debian/rules: "don't care about lock changes", "We patched some crates
    // so have to rm the checksums", "Link against system liblzma".
    fs::remove_file(tree.join("Cargo.lock"))?;
    let prune = tree.join("debian/prune-checksums");
    cmd::run(
        Command::new("find")
            .args(["vendor", "-name", ".cargo-checksum.json", "-execdir"])
            .arg(&prune)
            .args(["{}", "+"])
            .current_dir(&tree),
    )?;
    fs::write(
        tree.join("vendor/lzma-sys/build.rs"),
        "fn main() { println!(\"cargo:rustc-link-lib=lzma\"); }\n",
    )?;
    cmd::output(git(&tree).args(["init", "-q", "-b", "pfe"]))?;
    // Bootstrap's output, its config, the vendoring config and the lock file
    // it writes live in the tree but are not source.
    fs::write(
        tree.join(".git/info/exclude"),
        "/build/\n/config.toml\n/.pc/\n/.cargo/\n/Cargo.lock\n",
    )?;
    cmd::output(git(&tree).args(["add", "-A"]))?;
    cmd::output(git(&tree).args([
        "commit",
        "-q",
        "-m",
        "base: rustc 1.63.0+dfsg1-2 prepared as debian/rules does",
    ]))?;
    cmd::output(git(&tree).args(["tag", "base"]))?;
    fs::rename(&tree, ctx.src())?;
    fs::remove_dir_all(&scratch)?;
    step.done();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worktree at a revision, with the main tree's `config.toml`; moved
    /// to another revision on the next call, the config kept in step.
    #[test]
    fn worktree_checks_out_the_revision_with_the_config() {
        let tmp = std::env::temp_dir().join(format!("pfe-worktree-{}", std::process::id()));
        let (src, dir) = (tmp.join("src"), tmp.join("wt"));
        fs::create_dir_all(&src).unwrap();
        let run = |cmd: &mut Command| cmd::output(cmd).unwrap();
        run(git(&src).args(["init", "-q"]));
        fs::write(src.join("x.py"), "one").unwrap();
        run(git(&src).args(["add", "x.py"]));
        run(git(&src).args(["commit", "-q", "-m", "one"]));
        let first = run(git(&src).args(["rev-parse", "HEAD"])).trim().to_string();
        fs::write(src.join("x.py"), "two").unwrap();
        run(git(&src).args(["commit", "-q", "-am", "two"]));
        let second = run(git(&src).args(["rev-parse", "HEAD"])).trim().to_string();
        fs::write(src.join("config.toml"), "[build]\n").unwrap();

        worktree(&src, &dir, &first, "worktree").unwrap();
        assert_eq!(fs::read_to_string(dir.join("x.py")).unwrap(), "one");
        assert_eq!(fs::read_to_string(dir.join("config.toml")).unwrap(), "[build]\n");
        fs::write(src.join("config.toml"), "[rust]\n").unwrap();
        worktree(&src, &dir, &second, "worktree").unwrap();
        assert_eq!(fs::read_to_string(dir.join("x.py")).unwrap(), "two");
        assert_eq!(fs::read_to_string(dir.join("config.toml")).unwrap(), "[rust]\n");
        fs::remove_dir_all(&tmp).unwrap();
    }
}
