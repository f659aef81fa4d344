//! `./x refresh`: the commits after `base` in the cached tree, exported to
//! `patches/` with `git format-patch`, and `patches/series` rewritten in
//! their order. Patch files are named after their subjects (no numbers, so
//! inserting a patch renames nothing), with Debian's `u-` or `d-` in front
//! as their `Forwarded:` says, and written only when they change.

use crate::apply;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use crate::prepare::{self, git};
use crate::series::{self, Entry};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;

pub fn run(ctx: &Ctx) -> Result<()> {
    if !prepare::is_prepared(ctx) {
        bail!("no prepared tree at {}: run `./x build` first", ctx.src().display());
    }
    let src = ctx.src();
    let dirty = apply::uncommitted(&src)?;
    if !dirty.is_empty() {
        bail!(
            "uncommitted changes in {}; commit them there first (one commit per patch):\n{}",
            src.display(),
            cmd::tail(&dirty, 20)
        );
    }
    let step = Step::start("export the cached tree's commits to patches/");
    let out = ctx.cache.join("refresh.tmp");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    cmd::output(
        git(&src)
            .args(["format-patch", "-q", "--zero-commit", "--no-signature", "-N", "--abbrev=12"])
            .args(["--filename-max-length=120", "-o"])
            .arg(&out)
            .arg("base..HEAD"),
    )?;
    let mut files: Vec<String> = fs::read_dir(&out)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    files.sort(); // format-patch numbers them in commit order
    let contents: Vec<String> = files.iter().map(|file| fs::read_to_string(out.join(file))).collect::<Result<_, _>>()?;
    // A commit whose message lost its DEP-3 pseudo-header (a `# Conflicts:`
    // paragraph that `git commit --no-edit` kept after it, a field dropped in
    // an edit) is refused here, before anything is written: its name would
    // come out wrong and the house rules would fail only later.
    let mut problems = Vec::new();
    for (file, content) in files.iter().zip(&contents) {
        problems.extend(series::dep3_problems(content).into_iter().map(|p| format!("{file}: {p}")));
    }
    if !problems.is_empty() {
        bail!(
            "the cached tree's commits do not carry DEP-3 pseudo-headers as Debian reads them \
             (the last paragraph of each message); patches/ is left as it was:\n  {}",
            problems.join("\n  ")
        );
    }
    let old: BTreeMap<String, Vec<String>> = match series::read(&ctx.patches()) {
        Ok(entries) => entries.into_iter().map(|e| (e.name, e.comments)).collect(),
        Err(_) => BTreeMap::new(),
    };
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    for (file, content) in files.iter().zip(&contents) {
        // `0001-rustc_session-add-the-flag.patch` -> `rustc_session-add-the-flag.patch`, then `d-` or `u-`
        let stem = file.split_once('-').map_or(file.as_str(), |(_, rest)| rest);
        // Checked above: every patch has exactly one.
        let forwarded = series::forwarded(content);
        let stem = series::debian_name(stem, forwarded.as_deref());
        let mut name = stem.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{}-{n}.patch", stem.trim_end_matches(".patch"));
            n += 1;
        }
        names.insert(name.clone());
        series::write_if_changed(&ctx.patches().join(&name), content.as_bytes())?;
        entries.push(Entry { comments: old.get(&name).cloned().unwrap_or_default(), name });
    }
    for stale in fs::read_dir(ctx.patches())? {
        let stale = stale?.file_name().to_string_lossy().into_owned();
        if stale.ends_with(".patch") && !names.contains(&stale) {
            fs::remove_file(ctx.patches().join(&stale))?;
            println!("    removed patches/{stale}");
        }
    }
    series::write(&ctx.patches(), &entries)?;
    fs::remove_dir_all(&out)?;
    let digest = series::digest(&ctx.patches())?;
    apply::write_synced(ctx, &apply::head(&src)?, &digest)?;
    println!("    {} patches in patches/series", entries.len());
    step.done();
    Ok(())
}
