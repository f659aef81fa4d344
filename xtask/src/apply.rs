//! Step 4: `patches/series` applied to the base as one commit per patch.
//!
//! The commits are made in a temporary index (`git mailinfo`, `git apply
//! --cached`, `git commit-tree`), without touching the work tree; then one
//! `git checkout` moves the tree to the result, which rewrites only the files
//! whose content differs. Cargo's fingerprints of everything else survive.
//!
//! The driver never discards work: uncommitted changes, or commits made in
//! the cached tree since the last apply or refresh, stop it unless
//! `--discard` is given.

use crate::cmd::{self, Step};
use crate::paths::Ctx;
use crate::prepare::git;
use crate::series;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::Path;

#[derive(Default)]
pub struct Args {
    /// Throw away uncommitted changes and unexported commits in the cached tree.
    pub discard: bool,
}

/// What the last apply or refresh left: the tree's HEAD and the series'
/// digest at that moment.
pub struct Synced {
    pub head: String,
    pub digest: String,
}

fn state_file(ctx: &Ctx) -> std::path::PathBuf {
    ctx.state().join("synced")
}

pub fn read_synced(ctx: &Ctx) -> Option<Synced> {
    let text = fs::read_to_string(state_file(ctx)).ok()?;
    let mut head = None;
    let mut digest = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("head", v)) => head = Some(v.to_string()),
            Some(("series", v)) => digest = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Synced { head: head?, digest: digest? })
}

pub fn write_synced(ctx: &Ctx, head: &str, digest: &str) -> Result<()> {
    fs::create_dir_all(ctx.state())?;
    fs::write(state_file(ctx), format!("head {head}\nseries {digest}\n"))?;
    Ok(())
}

pub fn head(src: &Path) -> Result<String> {
    Ok(cmd::output(git(src).args(["rev-parse", "HEAD"]))?.trim().to_string())
}

/// Uncommitted changes in the cached tree (bootstrap's `build/` and
/// `config.toml` are excluded), as `git status --short` prints them.
pub fn uncommitted(src: &Path) -> Result<String> {
    cmd::output(git(src).args(["status", "--porcelain", "--untracked-files=all"]))
}

/// Stops unless the cached tree holds nothing that `patches/` lacks.
pub fn ensure_no_unexported_work(ctx: &Ctx, discard: bool) -> Result<()> {
    let src = ctx.src();
    let dirty = uncommitted(&src)?;
    let head = head(&src)?;
    let base = cmd::output(git(&src).args(["rev-parse", "base^{commit}"]))?.trim().to_string();
    let synced = read_synced(ctx);
    let exported = match &synced {
        Some(synced) => synced.head == head,
        None => head == base,
    };
    if (!dirty.is_empty() || !exported) && !discard {
        let mut why = String::new();
        if !dirty.is_empty() {
            why.push_str(&format!(
                "uncommitted changes in {}:\n{}\n",
                src.display(),
                cmd::tail(&dirty, 20)
            ));
        }
        if !exported {
            // Only what came after the last apply or refresh, when that is
            // an ancestor; otherwise everything after the base.
            let since = synced
                .map(|s| s.head)
                .filter(|h| cmd::output(git(&src).args(["merge-base", "--is-ancestor", h, "HEAD"])).is_ok())
                .unwrap_or(base);
            let log = cmd::output(git(&src).args(["log", "--oneline", &format!("{since}..HEAD")]))?;
            why.push_str(&format!(
                "commits in {} that `patches/` may not have (since the last apply or refresh):\n{}\n",
                src.display(),
                cmd::tail(&log, 20)
            ));
        }
        bail!(
            "{why}Keep them: commit in the cached tree, then `./x refresh` exports them to patches/.\n\
             Throw them away: pass --discard."
        );
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let src = ctx.src();
    let digest = series::digest(&ctx.patches())?;
    if let Some(synced) = read_synced(ctx) {
        if synced.digest == digest && synced.head == head(&src)? && uncommitted(&src)?.is_empty() {
            Step::skip("apply the series", "the cached tree holds it");
            return Ok(());
        }
    }
    ensure_no_unexported_work(ctx, args.discard)?;
    let step = Step::start("apply the series");
    let entries = series::read(&ctx.patches())?;
    let scratch = ctx.cache.join("apply.tmp");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    let index = scratch.join("index");
    let mut parent = cmd::output(git(&src).args(["rev-parse", "base^{commit}"]))?.trim().to_string();
    cmd::output(git(&src).env("GIT_INDEX_FILE", &index).args(["read-tree", &parent]))?;
    for entry in &entries {
        let patch = ctx.patches().join(&entry.name);
        parent = commit_patch(&src, &scratch, &index, &patch, &parent)
            .with_context(|| format!("applying {}", entry.name))?;
    }
    if args.discard {
        cmd::output(git(&src).args(["reset", "-q", "--hard"]))?;
        cmd::output(git(&src).args(["clean", "-q", "-fd"]))?;
    }
    cmd::output(git(&src).args(["checkout", "-q", "-B", "pfe", &parent]))?;
    write_synced(ctx, &parent, &digest)?;
    fs::remove_dir_all(&scratch)?;
    println!("    {} patches applied, HEAD {}", entries.len(), &parent[..12]);
    step.done();
    Ok(())
}

/// Makes the commit of one `git format-patch` file on top of `parent`, in the
/// temporary `index`, and returns its id.
fn commit_patch(src: &Path, scratch: &Path, index: &Path, patch: &Path, parent: &str) -> Result<String> {
    let msg = scratch.join("msg");
    let diff = scratch.join("diff");
    let input = fs::File::open(patch).with_context(|| format!("cannot read {}", patch.display()))?;
    let info = cmd::output_from(git(src).args(["mailinfo"]).arg(&msg).arg(&diff).stdin(input))?;
    let field = |name: &str| {
        info.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    let subject = field("Subject:");
    let body = fs::read_to_string(&msg)?;
    fs::write(&msg, format!("{subject}\n\n{}", body.trim_end()).trim_end().to_string() + "\n")?;
    cmd::output(git(src).env("GIT_INDEX_FILE", index).args(["apply", "--cached"]).arg(&diff))?;
    let tree = cmd::output(git(src).env("GIT_INDEX_FILE", index).args(["write-tree"]))?;
    let commit = cmd::output(
        git(src)
            .env("GIT_AUTHOR_NAME", field("Author:"))
            .env("GIT_AUTHOR_EMAIL", field("Email:"))
            .env("GIT_AUTHOR_DATE", field("Date:"))
            .args(["commit-tree", tree.trim(), "-p", parent, "-F"])
            .arg(&msg),
    )?;
    Ok(commit.trim().to_string())
}
