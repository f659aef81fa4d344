//! `./x test`: builds what is missing, then runs every test of the project —
//! the driver's own `cargo test`s, the compiletest suites the series adds,
//! the packagers' quilt check and the end-to-end tests — and ends with
//! `N passed, N failed`.

use crate::build;
use crate::cmd::{self, Step};
use crate::e2e;
use crate::paths::{Ctx, HOST};
use crate::prepare;
use crate::series;
use anyhow::{bail, Context, Result};
use std::fs;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Throw away uncommitted changes and unexported commits in the cached tree.
    #[arg(long)]
    pub discard: bool,
    /// Run only the tests whose name contains this (compiletest: its filter).
    #[arg(long)]
    pub only: Option<String>,
}

/// The compiletest suites the series adds to, and the filters (any one
/// matches) that select its tests: the ones it adds
/// (`*/patchable-function-entry/*.rs`, `feature-gate-patchable_function_entry.rs`)
/// and the base's `codegen/instrument-mcount.rs`, which it changes. No other
/// test of the base matches.
pub const SUITES: &[&str] = &["src/test/codegen", "src/test/assembly", "src/test/ui"];
pub const FILTER: &str = "patchable instrument-mcount";

#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, result: Result<()>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("    ok      {name}");
            }
            Err(err) => {
                self.failed += 1;
                println!("    FAILED  {name}\n{}", indent(&format!("{err:#}")));
                self.failures.push(name.to_string());
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("            {l}")).collect::<Vec<_>>().join("\n")
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    build::run(ctx, &build::Args { discard: args.discard })?;
    let mut tally = Tally::default();
    let wanted = |name: &str| args.only.as_deref().map_or(true, |f| name.contains(f));

    if wanted("driver") {
        driver_tests(ctx, &mut tally)?;
    }
    compiletest(ctx, args.only.as_deref(), &mut tally)?;
    if wanted("quilt") {
        let step = Step::start("the series on top of Debian's patches, with quilt");
        let result = quilt_check(ctx);
        tally.record("quilt: series applies after debian/patches/series", result);
        step.done();
    }
    let step = Step::start("end-to-end tests with the built toolchain");
    for (name, test) in e2e::TESTS {
        if wanted(name) {
            tally.record(name, test(ctx));
        }
    }
    step.done();

    // Only full runs: a filtered run's time says nothing about `./x test`.
    if args.only.is_none() {
        build::record_time(ctx, "test", started)?;
    }
    println!("./x test: done in {}", cmd::elapsed(started.elapsed()));
    if !tally.failures.is_empty() {
        println!("failed:");
        for name in &tally.failures {
            println!("    {name}");
        }
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        bail!("{} test(s) failed", tally.failed);
    }
    if tally.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// `test result: ok. 3 passed; 0 failed; ...` lines, summed.
pub fn parse_results(log: &str) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { continue };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let n = |w: &[&str]| w.iter().rev().nth(1).and_then(|n| n.parse::<usize>().ok());
            match words.last() {
                Some(&"passed") => passed += n(&words).unwrap_or(0),
                Some(&"failed") => failed += n(&words).unwrap_or(0),
                _ => {}
            }
        }
    }
    (passed, failed)
}

/// The driver's and pfe-check's own `cargo test`s (house rules included).
fn driver_tests(ctx: &Ctx, tally: &mut Tally) -> Result<()> {
    let step = Step::start("driver unit tests and house rules (cargo test)");
    let log = ctx.logs().join("cargo-test.log");
    let result = cmd::run_logged(
        Command::new("cargo")
            .args(["test", "--workspace", "--manifest-path"])
            .arg(ctx.root.join("Cargo.toml")),
        "cargo test",
        &log,
        None,
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    let (passed, failed) = parse_results(&text);
    tally.passed += passed;
    tally.failed += failed;
    println!("    {passed} passed, {failed} failed (log: {})", log.display());
    if let Err(err) = result {
        if failed == 0 {
            tally.record("driver: cargo test", Err(err));
        } else {
            tally.failures.push(format!("driver: cargo test ({failed} failed, see {})", log.display()));
        }
    }
    step.done();
    Ok(())
}

/// The codegen, assembly and ui tests of the series, through the tree's own
/// `x.py test --stage 1`.
fn compiletest(ctx: &Ctx, only: Option<&str>, tally: &mut Tally) -> Result<()> {
    let step = Step::start("compiletest: codegen, assembly and ui tests of the series");
    let log = ctx.logs().join("compiletest.log");
    let filter = match only {
        Some(f) => f.to_string(),
        None => FILTER.to_string(),
    };
    let result = cmd::run_logged(
        build::xpy(ctx)
            .args(["test", "--stage", "1", "--force-rerun", "--target", HOST])
            .args(SUITES)
            .args(["--test-args", &filter]),
        "x.py test",
        &log,
        None,
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    let (passed, failed) = parse_results(&text);
    tally.passed += passed;
    tally.failed += failed;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("test [").and_then(|l| l.strip_suffix(" ... FAILED")) {
            tally.failures.push(format!("compiletest: [{name}"));
        }
    }
    println!("    {passed} passed, {failed} failed (log: {})", log.display());
    match result {
        Err(err) if failed == 0 => tally.record("compiletest", Err(err)),
        _ if passed + failed == 0 && only.is_none() => {
            tally.record("compiletest", Err(anyhow::anyhow!("no compiletest test ran")))
        }
        _ => {}
    }
    step.done();
    Ok(())
}

/// What a distribution packager does: a fresh Debian tree, our patches
/// appended to `debian/patches/series`, `quilt push -a`.
fn quilt_check(ctx: &Ctx) -> Result<()> {
    let dir = ctx.cache.join("quilt-check");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    let tree = prepare::unpack(ctx, &dir)?;
    let debian_patches = tree.join("debian/patches");
    let mut listing = fs::read_to_string(debian_patches.join("series"))?;
    listing.push_str("\n# rustc-pfe: patchable function entries\n");
    for entry in series::read(&ctx.patches())? {
        fs::copy(ctx.patches().join(&entry.name), debian_patches.join(&entry.name))
            .with_context(|| format!("copying {}", entry.name))?;
        listing.push_str(&entry.name);
        listing.push('\n');
    }
    fs::write(debian_patches.join("series"), listing)?;
    let out = prepare::quilt_push(&tree)?;
    let last = series::read(&ctx.patches())?.last().map(|e| e.name.clone()).unwrap_or_default();
    if !out.contains(&format!("Now at patch debian/patches/{last}")) {
        bail!("quilt did not end at {last}:\n{}", cmd::tail(&out, 10));
    }
    fs::remove_dir_all(&dir)?;
    Ok(())
}
