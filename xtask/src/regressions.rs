//! `./x regressions`: the base's whole `codegen`, `assembly` and `ui` suites
//! on the patched stage1 compiler, compared with the same suites on the
//! unpatched base. A test that fails only with the series is a regression.
//!
//! The base is built and tested in a worktree of the cached tree at `base`
//! with a build directory of its own (`$RUSTC_PFE_HOME/base`) and the same
//! `config.toml`, so the two runs differ only by the series. Both run
//! `x.py test --stage 1 --force-rerun --no-fail-fast` for the host; the
//! base's results depend only on the pinned base, so they are kept in the
//! state directory and reused (`--rerun-base` runs them again). The result
//! is written to `docs/REGRESSIONS.md`.

use crate::build;
use crate::cmd::{self, Progress, Step};
use crate::paths::{Ctx, HOST};
use crate::prepare::git;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

pub const SUITES: &[&str] = &["codegen", "assembly", "ui"];

#[derive(Default)]
pub struct Args {
    /// Run the base's suites again instead of reusing its recorded results.
    pub rerun_base: bool,
}

/// One suite's outcome, as libtest's summary line and failure list give it.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Suite {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub failures: BTreeSet<String>,
}

/// `x.py test` output: suite name → outcome. The suite comes from the
/// `Check compiletest suite=NAME ...` line bootstrap prints before it.
pub fn parse(log: &str) -> BTreeMap<String, Suite> {
    let mut suites: BTreeMap<String, Suite> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_list = false;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("Check compiletest suite=") {
            current = rest.split_whitespace().next().map(str::to_string);
            in_list = false;
            continue;
        }
        let Some(name) = current.clone() else { continue };
        let suite = suites.entry(name).or_default();
        if line == "failures:" {
            // The first `failures:` heads the captured output, the second
            // the list of names; both are followed by what we want or skip.
            in_list = true;
        } else if in_list && line.starts_with("    [") {
            suite.failures.insert(line.trim().to_string());
        } else if let Some([passed, failed, ignored]) = crate::test::summary_counts(line) {
            in_list = false;
            suite.passed += passed;
            suite.failed += failed;
            suite.ignored += ignored;
        } else if in_list && line.starts_with("---- ") {
            in_list = false;
        }
    }
    suites
}

/// The base's results and how long its run took, as the state directory
/// keeps them.
fn save(path: &Path, suites: &BTreeMap<String, Suite>, took: &str) -> Result<()> {
    let mut text = format!("took {took}\n");
    for (name, s) in suites {
        writeln!(text, "suite {name} {} {} {}", s.passed, s.failed, s.ignored)?;
        for f in &s.failures {
            writeln!(text, "fail {name} {f}")?;
        }
    }
    fs::write(path, text)?;
    Ok(())
}

fn load(path: &Path) -> Result<(BTreeMap<String, Suite>, String)> {
    let mut suites: BTreeMap<String, Suite> = BTreeMap::new();
    let mut took = "not recorded".to_string();
    for line in fs::read_to_string(path)?.lines() {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("took"), Some(time), None) => took = time.to_string(),
            (Some("suite"), Some(name), Some(rest)) => {
                let n: Vec<usize> = rest.split(' ').map(str::parse).collect::<Result<_, _>>()?;
                let s = suites.entry(name.to_string()).or_default();
                (s.passed, s.failed, s.ignored) = (n[0], n[1], n[2]);
            }
            (Some("fail"), Some(name), Some(test)) => {
                suites.entry(name.to_string()).or_default().failures.insert(test.to_string());
            }
            _ => bail!("{}: bad line `{line}`", path.display()),
        }
    }
    Ok((suites, took))
}

/// The arguments of `x.py` for one run of the suites, in both trees.
fn xpy_args() -> Vec<String> {
    let options = ["test", "--stage", "1", "--force-rerun", "--no-fail-fast", "--target", HOST];
    options.iter().map(|o| o.to_string()).chain(SUITES.iter().map(|s| format!("src/test/{s}"))).collect()
}

/// Runs the suites in the tree at `dir`, logging to `log`.
fn run_suites(ctx: &Ctx, dir: &Path, what: &str, log: &Path) -> Result<(BTreeMap<String, Suite>, String)> {
    let step = Step::start(what);
    let began = Instant::now();
    let mut xpy = build::xpy(ctx);
    xpy.current_dir(dir).args(xpy_args());
    // Failing tests make x.py fail; what failed is read from the log.
    let outcome = cmd::run_logged(
        &mut xpy,
        "x.py test",
        log,
        Some(Progress { counts: |l| l.starts_with("test result: "), total: Some(SUITES.len()), unit: "suites" }),
    );
    let took = cmd::elapsed(began.elapsed());
    let suites = parse(&fs::read_to_string(log)?);
    for suite in SUITES {
        if !suites.get(*suite).map_or(false, |s| s.passed > 0) {
            if let Err(err) = outcome {
                return Err(err.context(format!("the {suite} suite did not run")));
            }
            bail!("the {suite} suite did not run; see {}", log.display());
        }
    }
    println!("    done in {took}");
    step.done();
    Ok((suites, took))
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    build::run(ctx, &build::Args::default())?;
    let src = ctx.src();
    let base = cmd::output(git(&src).args(["rev-parse", "base^{commit}"]))?.trim().to_string();
    let head = cmd::output(git(&src).args(["rev-parse", "HEAD"]))?.trim().to_string();

    let record = ctx.state().join(format!("regressions-base-{}", &base[..12]));
    let (base_suites, base_took) = if record.is_file() && !args.rerun_base {
        Step::skip("the base's suites", &format!("recorded in {}", record.display()));
        let (suites, took) = load(&record)?;
        (suites, format!("{took} (recorded)"))
    } else {
        let dir = ctx.cache.join("base");
        crate::prepare::worktree(&src, &dir, &base, "a worktree of the cached tree at the unpatched base")?;
        let log = ctx.logs().join("regressions-base.log");
        let (suites, took) = run_suites(ctx, &dir, "the base's codegen, assembly and ui suites (builds its stage1 first)", &log)?;
        save(&record, &suites, &took)?;
        (suites, took)
    };
    let log = ctx.logs().join("regressions-patched.log");
    let (patched, patched_took) = run_suites(ctx, &src, "the same suites with the series", &log)?;

    let mut regressions = Vec::new();
    let mut table = String::new();
    writeln!(table, "| suite | base: passed / failed / ignored | series: passed / failed / ignored | tests the series adds |")?;
    writeln!(table, "|---|---|---|---|")?;
    for suite in SUITES {
        let b = &base_suites[*suite];
        let p = &patched[*suite];
        let added = (p.passed + p.failed + p.ignored) as i64 - (b.passed + b.failed + b.ignored) as i64;
        writeln!(
            table,
            "| {suite} | {} / {} / {} | {} / {} / {} | {added} |",
            b.passed, b.failed, b.ignored, p.passed, p.failed, p.ignored
        )?;
        regressions.extend(p.failures.difference(&b.failures).cloned());
    }
    let both: Vec<&String> =
        SUITES.iter().flat_map(|s| base_suites[*s].failures.intersection(&patched[*s].failures)).collect();
    let fixed: Vec<&String> =
        SUITES.iter().flat_map(|s| base_suites[*s].failures.difference(&patched[*s].failures)).collect();

    let mut doc = String::new();
    writeln!(doc, "# No regressions: the base's suites with and without the series\n")?;
    writeln!(doc, "Written by `./x regressions` (`xtask/src/regressions.rs`); do not edit.\n")?;
    writeln!(doc, "How it was made: `x.py {}`,", xpy_args().join(" "))?;
    writeln!(doc, "once in a worktree of the cached tree at the unpatched base (`{}`, a stage1 built there with the same `config.toml`)", &base[..12])?;
    writeln!(doc, "and once in the cached tree with the series applied (`{}`); the base's results are kept and reused until `--rerun-base`.", &head[..12])?;
    writeln!(doc, "A test that fails with the series and not without it is a regression.\n")?;
    writeln!(doc, "Base run: {base_took}; run with the series: {patched_took}.\n")?;
    doc.push_str(&table);
    writeln!(doc, "\nRegressions (fail only with the series): {}", regressions.len())?;
    for r in &regressions {
        writeln!(doc, "- `{r}`")?;
    }
    writeln!(doc, "\nKnown failures of the base on this machine, failing with the series too: {}", both.len())?;
    for f in &both {
        writeln!(doc, "- `{f}`")?;
    }
    if !fixed.is_empty() {
        writeln!(doc, "\nFailing in the base only: {}", fixed.len())?;
        for f in &fixed {
            writeln!(doc, "- `{f}`")?;
        }
    }
    fs::write(ctx.root.join("docs/REGRESSIONS.md"), &doc)?;
    print!("{table}");
    println!("./x regressions: done in {}; written to docs/REGRESSIONS.md", cmd::elapsed(started.elapsed()));
    if !regressions.is_empty() {
        for r in &regressions {
            println!("    REGRESSION  {r}");
        }
        bail!("{} test(s) fail only with the series", regressions.len());
    }
    println!("0 regressions");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Check compiletest suite=codegen mode=codegen (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu)

running 3 tests
.i.
test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.00s

Check compiletest suite=ui mode=ui (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu)

running 4 tests
.F.F
failures:

---- [ui] src/test/ui/a.rs stdout ----
error: test compilation failed
failures:
    [ui] src/test/ui/a.rs
    [ui] src/test/ui/b.rs#rev

test result: FAILED. 2 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2.00s
";

    #[test]
    fn parses_suites_counts_and_failures() {
        let suites = parse(LOG);
        assert_eq!(suites["codegen"], Suite { passed: 2, failed: 0, ignored: 1, failures: BTreeSet::new() });
        let ui = &suites["ui"];
        assert_eq!((ui.passed, ui.failed, ui.ignored), (2, 2, 0));
        let names: Vec<&str> = ui.failures.iter().map(String::as_str).collect();
        assert_eq!(names, ["[ui] src/test/ui/a.rs", "[ui] src/test/ui/b.rs#rev"]);
    }

    #[test]
    fn results_survive_a_save_and_load() {
        let suites = parse(LOG);
        let dir = std::env::temp_dir().join(format!("pfe-regressions-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record");
        save(&path, &suites, "14m03s").unwrap();
        assert_eq!(load(&path).unwrap(), (suites, "14m03s".to_string()));
        fs::remove_dir_all(&dir).unwrap();
    }
}
