//! `./x test`: builds what is missing, then runs every test of the project
//! in two harnesses and ends with `N passed, N failed`:
//!
//! - libtest: `cargo test --workspace` runs the driver's unit tests and house
//!   rules, pfe-check's tests, the packagers' quilt check and the end-to-end
//!   tests with the built toolchain (those two `#[ignore]`d, so a plain
//!   `cargo test` runs without the cache; `./x test` includes them);
//! - compiletest: the codegen, assembly and ui tests the series adds, through
//!   the tree's own `x.py test`, and the ui tests once more with
//!   `aarch64-unknown-linux-gnu` as the target.
//!
//! Filters are libtest's: a test runs when its name contains one of them
//! (`--exact`: equals one). Compiletest's names are its own
//! (`[ui] src/test/ui/patchable-function-entry/naked.rs`); `x.py test` runs
//! only when a filter names one of the series' tests.

use crate::build;
use crate::cmd::{self, Progress, Step};
use crate::paths::{Ctx, HOST};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

#[derive(Default)]
pub struct Args {
    /// Throw away uncommitted changes and unexported commits in the cached tree.
    pub discard: bool,
    /// A filter must equal a test's name, not be part of it.
    pub exact: bool,
    /// Run only the tests whose name contains one of these (all when empty).
    pub filters: Vec<String>,
}

impl Args {
    fn selects(&self, name: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|f| if self.exact { name == f } else { name.contains(f.as_str()) })
    }
}

/// The compiletest suites the series adds to, and the filters (any one
/// matches) that select its tests: the ones it adds
/// (`*/patchable-function-entry/*.rs`, `feature-gate-patchable_function_entry.rs`,
/// `*/no-jump-tables.rs`) and the base's `codegen/instrument-mcount.rs`, whose
/// compiler code it changes. No other test of the base matches.
pub const SUITES: &[&str] = &["src/test/codegen", "src/test/assembly", "src/test/ui", "src/test/incremental"];
pub const FILTER: &str = "patchable instrument-mcount no-jump-tables";

#[derive(Default)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<String>,
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("            {l}")).collect::<Vec<_>>().join("\n")
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    build::run(ctx, &build::Args { discard: args.discard })?;
    let mut tally = Tally::default();
    rust_tests(ctx, args, &mut tally)?;
    compiletest(ctx, args, &mut tally)?;

    // Only full runs: a filtered run's time says nothing about `./x test`.
    if args.filters.is_empty() {
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
        bail!("no test ran (filters: {:?})", args.filters);
    }
    Ok(())
}

/// The counts of one `test result: ok. 3 passed; 0 failed; 1 ignored; ...`
/// line: `[passed, failed, ignored]`; `None` for any other line.
pub fn summary_counts(line: &str) -> Option<[usize; 3]> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut counts = [0; 3];
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let n = words.iter().rev().nth(1).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
        match words.last() {
            Some(&"passed") => counts[0] += n,
            Some(&"failed") => counts[1] += n,
            Some(&"ignored") => counts[2] += n,
            _ => {}
        }
    }
    Some(counts)
}

/// `test result:` lines, passed and failed summed.
pub fn parse_results(log: &str) -> (usize, usize) {
    log.lines().filter_map(summary_counts).fold((0, 0), |(p, f), [passed, failed, _]| (p + passed, f + failed))
}

/// What libtest printed: each test's outcome, in the order they ended, and
/// the output it captured (`---- NAME stdout ----` sections, shown for
/// failures and, with `--show-output`, for successes).
#[derive(Default, Debug)]
pub struct Libtest {
    pub outcomes: Vec<(String, bool)>,
    pub output: BTreeMap<String, String>,
}

/// A `test NAME ... ok` or `test NAME ... FAILED` line.
fn outcome_line(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("test ")?;
    if let Some(name) = rest.strip_suffix(" ... ok") {
        Some((name, true))
    } else {
        rest.strip_suffix(" ... FAILED").map(|name| (name, false))
    }
}

pub fn parse_libtest(log: &str) -> Libtest {
    let mut result = Libtest::default();
    let mut current: Option<(String, Vec<&str>)> = None;
    let finish = |current: &mut Option<(String, Vec<&str>)>, result: &mut Libtest| {
        if let Some((name, mut lines)) = current.take() {
            while lines.last().map_or(false, |l| l.trim().is_empty()) {
                lines.pop();
            }
            if !lines.is_empty() {
                result.output.insert(name, lines.join("\n"));
            }
        }
    };
    for line in log.lines() {
        if let Some((name, ok)) = outcome_line(line) {
            result.outcomes.push((name.to_string(), ok));
        } else if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----")) {
            finish(&mut current, &mut result);
            current = Some((name.to_string(), Vec::new()));
        } else if line == "successes:" || line == "failures:" || line.starts_with("test result: ") {
            finish(&mut current, &mut result);
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    finish(&mut current, &mut result);
    result
}

/// Every Rust test of the workspace, in one `cargo test`: the driver's unit
/// tests and house rules, pfe-check's, the quilt check and the end-to-end
/// tests (the last two `#[ignore]`d for a plain `cargo test`).
fn rust_tests(ctx: &Ctx, args: &Args, tally: &mut Tally) -> Result<()> {
    let step = Step::start("Rust tests (cargo test): driver, house rules, pfe-check, quilt check, end-to-end");
    let log = ctx.logs().join("cargo-test.log");
    let mut cargo = cmd::cargo();
    cargo
        .args(["test", "--workspace", "--no-fail-fast", "--manifest-path"])
        .arg(ctx.root.join("Cargo.toml"))
        .args(["--", "--include-ignored", "--show-output"]);
    if args.exact {
        cargo.arg("--exact");
    }
    cargo.args(&args.filters);
    let result = cmd::run_logged(
        &mut cargo,
        "cargo test",
        &log,
        Some(Progress { counts: |l| outcome_line(l).is_some(), total: None, unit: "tests done" }),
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    let libtest = parse_libtest(&text);
    for (name, ok) in &libtest.outcomes {
        println!("    {}  {name}", if *ok { "ok    " } else { "FAILED" });
        if let Some(output) = libtest.output.get(name) {
            println!("{}", indent(output));
        }
        if *ok {
            tally.passed += 1;
        } else {
            tally.failed += 1;
            tally.failures.push(name.clone());
        }
    }
    println!("    log: {}", log.display());
    if let Err(err) = result {
        // A failed test is counted above; anything else (the build, a
        // crash of a test binary) is one more failure.
        if libtest.outcomes.iter().all(|(_, ok)| *ok) {
            println!("    FAILED  cargo test\n{}", indent(&format!("{err:#}")));
            tally.failed += 1;
            tally.failures.push("cargo test".to_string());
        }
    }
    step.done();
    Ok(())
}

/// The names compiletest gives the series' tests (`[mode] path` and
/// `[mode] path#revision`), with the filter that selects each in `x.py
/// test`: its path, plus `#revision` for one revision.
pub fn series_compiletests(src: &Path) -> Result<Vec<(String, String)>> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                // Crates other tests build (`// aux-build:`) are not tests.
                if !path.ends_with("auxiliary") {
                    walk(&path, files)?;
                }
            } else if path.extension().map_or(false, |e| e == "rs") {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut tests = Vec::new();
    for suite in SUITES {
        let mode = suite.rsplit('/').next().unwrap_or(suite);
        let mut files = Vec::new();
        walk(&src.join(suite), &mut files)?;
        files.sort();
        for file in files {
            let path = file.strip_prefix(src)?.to_string_lossy().into_owned();
            if !FILTER.split_whitespace().any(|f| path.contains(f)) {
                continue;
            }
            let text = fs::read_to_string(&file)?;
            // Compiletest adds up every `// revisions:` line.
            let revisions: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("// revisions:"))
                .flat_map(str::split_whitespace)
                .collect();
            // An incremental test is one test that runs its revisions in order.
            let revisions = if mode == "incremental" { Vec::new() } else { revisions };
            for rev in &revisions {
                tests.push((format!("[{mode}] {path}#{rev}"), format!("{path}#{rev}")));
            }
            if revisions.is_empty() {
                tests.push((format!("[{mode}] {path}"), path));
            }
        }
    }
    Ok(tests)
}

/// The codegen, assembly and ui tests of the series, through the tree's own
/// `x.py test --stage 1`; with filters, only the tests they name (no
/// `x.py` at all when they name none). The ui tests run a second time with
/// aarch64 as the target: a test that needs padding names its target or
/// host, so none may assume an x86_64 one.
fn compiletest(ctx: &Ctx, args: &Args, tally: &mut Tally) -> Result<()> {
    let what = "compiletest: codegen, assembly and ui tests of the series";
    let chosen: Vec<(String, String)> = series_compiletests(&ctx.src())?
        .into_iter()
        .filter(|(name, _)| args.filters.is_empty() || args.selects(name))
        .collect();
    let filter = |ui_only: bool| {
        if args.filters.is_empty() {
            return FILTER.to_string();
        }
        let names: Vec<&str> = chosen
            .iter()
            .filter(|(name, _)| !ui_only || name.starts_with("[ui] "))
            .map(|(_, filter)| filter.as_str())
            .collect();
        names.join(" ")
    };
    if chosen.is_empty() {
        Step::skip(what, "the filters name none of its tests");
        return Ok(());
    }
    run_compiletest(ctx, what, HOST, SUITES, &filter(false), tally)?;
    let what = "compiletest: the ui tests of the series for aarch64-unknown-linux-gnu";
    if chosen.iter().any(|(name, _)| name.starts_with("[ui] ")) {
        let suites = &["src/test/ui"];
        run_compiletest(ctx, what, AARCH64, suites, &filter(true), tally)?;
    } else {
        Step::skip(what, "the filters name none of its ui tests");
    }
    Ok(())
}

pub const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// One `x.py test` of `suites` for `target`, its results added to `tally`;
/// names and the log are marked with the target when it is not the host.
fn run_compiletest(ctx: &Ctx, what: &str, target: &str, suites: &[&str], filter: &str, tally: &mut Tally) -> Result<()> {
    let step = Step::start(what);
    let (log, label) = if target == HOST {
        (ctx.logs().join("compiletest.log"), String::new())
    } else {
        (ctx.logs().join(format!("compiletest-{target}.log")), format!(" for {target}"))
    };
    let result = cmd::run_logged(
        build::xpy(ctx)
            // Every suite runs even when one fails: all failures in one run.
            .args(["test", "--stage", "1", "--force-rerun", "--no-fail-fast", "--target", target])
            .args(suites)
            .args(["--test-args", filter]),
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
            tally.failures.push(format!("compiletest{label}: [{name}"));
        }
    }
    println!("    {passed} passed, {failed} failed (log: {})", log.display());
    let problem = match result {
        Err(err) if failed == 0 => Some(format!("{err:#}")),
        _ if passed + failed == 0 => Some("no compiletest test ran".to_string()),
        _ => None,
    };
    if let Some(problem) = problem {
        println!("    FAILED  compiletest{label}\n{}", indent(&problem));
        tally.failed += 1;
        tally.failures.push(format!("compiletest{label}"));
    }
    step.done();
    Ok(())
}

/// The error of a failed libtest test that returns `Result<(), Failure>`:
/// libtest prints it with `Debug`, here the error and its causes as the
/// rest of the driver prints them (anyhow's own `Debug` adds a backtrace
/// whenever `RUST_BACKTRACE` is set).
#[cfg(test)]
pub struct Failure(pub anyhow::Error);

#[cfg(test)]
impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{paths::Ctx, prepare, series};
    use anyhow::Context;

    /// What a distribution packager does: a fresh Debian tree, our patches
    /// appended to `debian/patches/series`, `quilt push -a`.
    #[test]
    #[ignore = "needs the cache's source package: ./x test runs it"]
    fn quilt_series_applies_after_debian_patches() -> Result<(), Failure> {
        quilt_check().map_err(Failure)
    }

    fn quilt_check() -> Result<()> {
        let ctx = Ctx::new()?;
        let dir = ctx.cache.join("quilt-check");
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let tree = prepare::unpack(&ctx, &dir)?;
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
        // "Now at patch NAME", with the patches' directory before NAME where
        // a quiltrc asks for it (Debian's /etc/quilt.quiltrc does).
        let at = out.lines().rev().find_map(|l| l.strip_prefix("Now at patch ")).unwrap_or("");
        if at.rsplit('/').next() != Some(last.as_str()) {
            bail!("quilt did not end at {last}:\n{}", cmd::tail(&out, 10));
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    const LOG: &str = "\
running 3 tests
test series::tests::a ... ok
test e2e::tests::b ... FAILED
test e2e::tests::c ... ok

successes:

---- e2e::tests::c stdout ----
            14 configurations compared

successes:
    e2e::tests::c

failures:

---- e2e::tests::b stdout ----
Error: rustc differs from clang-14

failures:
    e2e::tests::b

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn libtest_outcomes_and_output() {
        let parsed = parse_libtest(LOG);
        assert_eq!(
            parsed.outcomes,
            [("series::tests::a".to_string(), true), ("e2e::tests::b".to_string(), false), ("e2e::tests::c".to_string(), true)]
        );
        assert_eq!(parsed.output["e2e::tests::b"], "Error: rustc differs from clang-14");
        assert_eq!(parsed.output["e2e::tests::c"], "            14 configurations compared");
        assert!(!parsed.output.contains_key("series::tests::a"));
        assert_eq!(parse_results(LOG), (2, 1));
    }

    #[test]
    fn filters_select_by_part_or_whole_name() {
        let args = |exact, filters: &[&str]| Args { discard: false, exact, filters: filters.iter().map(|f| f.to_string()).collect() };
        assert!(args(false, &[]).selects("anything"));
        assert!(args(false, &["naked"]).selects("[ui] src/test/ui/patchable-function-entry/naked.rs"));
        assert!(!args(false, &["asm_3_2"]).selects("[ui] src/test/ui/patchable-function-entry/naked.rs"));
        assert!(!args(true, &["naked.rs"]).selects("[ui] src/test/ui/patchable-function-entry/naked.rs"));
        assert!(args(true, &["e2e::tests::asm_3_2"]).selects("e2e::tests::asm_3_2"));
    }

    #[test]
    fn compiletest_names_with_revisions() -> Result<()> {
        let src = std::env::temp_dir().join(format!("xtask-compiletest-{}", std::process::id()));
        for suite in SUITES {
            fs::create_dir_all(src.join(suite).join("patchable-function-entry"))?;
        }
        fs::write(src.join("src/test/ui/patchable-function-entry/flag.rs"), "// revisions: a\n// revisions: b\n")?;
        fs::write(src.join("src/test/codegen/patchable-function-entry/attr.rs"), "// compile-flags: -O\n")?;
        fs::write(src.join("src/test/codegen/instrument-mcount.rs"), "")?;
        fs::write(src.join("src/test/codegen/unrelated.rs"), "")?;
        let tests = series_compiletests(&src);
        fs::remove_dir_all(&src)?;
        let names: Vec<(String, String)> = tests?;
        let pairs: Vec<(&str, &str)> = names.iter().map(|(n, f)| (n.as_str(), f.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("[codegen] src/test/codegen/instrument-mcount.rs", "src/test/codegen/instrument-mcount.rs"),
                ("[codegen] src/test/codegen/patchable-function-entry/attr.rs", "src/test/codegen/patchable-function-entry/attr.rs"),
                ("[ui] src/test/ui/patchable-function-entry/flag.rs#a", "src/test/ui/patchable-function-entry/flag.rs#a"),
                ("[ui] src/test/ui/patchable-function-entry/flag.rs#b", "src/test/ui/patchable-function-entry/flag.rs#b"),
            ]
        );
        Ok(())
    }
}
