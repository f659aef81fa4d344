//! `./x check-prefixes`: every prefix of the series, one patch more each
//! time, type-checked with `x.py check` of the compiler. A reviewer bisects
//! through a series, and Debian may carry part of one: each prefix must build.
//! A full stage1 build per prefix would take hours on these machines; `check`
//! runs every compiler crate's front end (what breaks when a patch uses an
//! item a later patch adds) at a fraction of the cost.
//!
//! Then the whole series is built and tested, as `./x test` does.
//!
//! It works in a second worktree of the cached tree with a build directory of
//! its own (`$RUSTC_PFE_HOME/prefix-check`), so the main tree's sources and
//! `build/` (what `./x build` and CI reuse) are never touched; moving from one
//! prefix to the next rewrites only the files that patch changes, so each
//! check after the first is incremental.

use crate::apply;
use crate::build;
use crate::cmd::{self, Progress, Step};
use crate::paths::Ctx;
use crate::prepare::git;
use anyhow::{bail, Result};
use std::time::Instant;

pub fn run(ctx: &Ctx) -> Result<()> {
    let started = Instant::now();
    apply::run(ctx, &apply::Args::default())?;
    let src = ctx.src();
    let base = cmd::output(git(&src).args(["rev-parse", "base^{commit}"]))?.trim().to_string();
    let list = cmd::output(git(&src).args(["rev-list", "--reverse", &format!("{base}..HEAD")]))?;
    let commits: Vec<&str> = list.lines().collect();
    if commits.is_empty() {
        bail!("the cached tree has no patches on top of `base`");
    }
    let dir = ctx.cache.join("prefix-check");
    crate::prepare::worktree(&src, &dir, &base, "a second worktree of the cached tree for the prefixes")?;
    let mut results = Vec::new();
    for (i, commit) in commits.iter().enumerate() {
        let subject = cmd::output(git(&src).args(["log", "-1", "--format=%s", commit]))?.trim().to_string();
        let step = Step::start(&format!("prefix {}/{}: {subject}", i + 1, commits.len()));
        cmd::output(git(&dir).args(["checkout", "-q", "--detach", commit]))?;
        let log = ctx.logs().join(format!("prefix-check-{:02}.log", i + 1));
        let began = Instant::now();
        let mut xpy = build::xpy(ctx);
        xpy.current_dir(&dir).args(["check", "compiler/rustc"]);
        let outcome = cmd::run_logged(&mut xpy, "x.py check", &log, Some(Progress { counts: |l| l.trim_start().starts_with("Checking "), total: None, unit: "crates" }));
        let took = cmd::elapsed(began.elapsed());
        match outcome {
            Ok(_) => {
                println!("    checks ({took})");
                step.done();
                results.push((subject, true, took));
            }
            Err(err) => {
                println!("    FAILED ({took}): {err:#}");
                results.push((subject, false, took));
            }
        }
    }
    println!("./x check-prefixes: done in {}", cmd::elapsed(started.elapsed()));
    for (i, (subject, ok, took)) in results.iter().enumerate() {
        println!("    {:>2} {} {took:>8}  {subject}", i + 1, if *ok { "ok    " } else { "FAILED" });
    }
    let failed = results.iter().filter(|r| !r.1).count();
    println!("{} of {} prefixes check", results.len() - failed, results.len());
    if failed > 0 {
        bail!("{failed} prefix(es) of the series do not check");
    }
    // The last prefix is the whole series: built and tested as `./x test`
    // does, in the cached tree.
    println!("==> the whole series: ./x test");
    crate::test::run(ctx, &crate::test::Args::default())?;
    println!("./x check-prefixes: every prefix checks and the whole series builds and passes its tests, in {}", cmd::elapsed(started.elapsed()));
    Ok(())
}
