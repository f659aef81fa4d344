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
//!
//! `--run-pass` answers another question the same way, behaviour at scale:
//! every ui test of the tree that builds and runs a program (`run-pass`,
//! `run-fail`), run twice by the patched stage1, plain and with padding
//! forced on every compilation (`x.py test --rustc-args`), compared test by
//! test. A test that passes plain and fails padded is a difference; one the
//! table below does not explain fails the command. Each question rewrites
//! only its own section of the document.

use crate::build;
use crate::cmd::{self, Progress, Step};
use crate::paths::{Ctx, HOST};
use crate::prepare::git;
use anyhow::{bail, Context, Result};
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
    /// Compare the run-pass programs plain and padded instead.
    pub run_pass: bool,
}

/// What the padded run adds to every compilation: the x86 kernel's call
/// padding, 16 nops before each function and its patch site 16-aligned.
pub const RUN_PASS_FLAGS: &str = "-Zpatchable-function-entry=16,16 -Zmin-function-alignment=16";

/// Tests that may pass plain and fail padded, each with the reason, found by
/// reading the test. Anything else that does is a regression.
const RUN_PASS_EXPLAINED: &[(&str, &str)] = &[];

/// The document both questions write, each into its own section.
const DOC_TITLE: &str = "# No regressions\n\n\
Written by `./x regressions` (`xtask/src/regressions.rs`); do not edit. Two questions, a section each:\n\
does the series fail a test of the base, and does padding change what a program does.\n";

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

/// A heading with the count, then one line per test; an empty list says
/// its count only when `always`.
fn list(doc: &mut String, heading: &str, tests: &[&String], always: bool) -> Result<()> {
    if always || !tests.is_empty() {
        writeln!(doc, "\n{heading}: {}", tests.len())?;
        for test in tests {
            writeln!(doc, "- `{test}`")?;
        }
    }
    Ok(())
}

/// Replaces the section `name` of the document at `path` with `body`, or
/// adds it at the end; the other sections stay as they are.
fn write_section(path: &Path, name: &str, body: &str) -> Result<()> {
    let old = fs::read_to_string(path).unwrap_or_default();
    fs::write(path, with_section(&old, name, body))?;
    Ok(())
}

fn with_section(doc: &str, name: &str, body: &str) -> String {
    let (begin, end) = (format!("<!-- begin {name} -->\n"), format!("<!-- end {name} -->\n"));
    let section = format!("{begin}{}\n{end}", body.trim_end());
    match (doc.find(&begin), doc.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &doc[..b], &doc[e + end.len()..]),
        _ if doc.starts_with(DOC_TITLE) => format!("{}\n\n{section}", doc.trim_end()),
        _ => format!("{DOC_TITLE}\n{section}"),
    }
}

/// Every ui test that builds and runs a program: a `run-pass` or `run-fail`
/// header, also one for a single revision (`// [rev]run-pass`); auxiliary
/// crates are not tests. Names as compiletest filters them, relative to the
/// tree.
fn run_pass_tests(src: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().map_or(false, |n| n != "auxiliary") {
                    walk(&path, out)?;
                }
            } else if path.extension().map_or(false, |e| e == "rs") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(&src.join("src/test/ui"), &mut files)?;
    let mut tests = Vec::new();
    for file in files {
        // Not every test is UTF-8 (some test the lexer); headers are ASCII.
        let text = String::from_utf8_lossy(&fs::read(&file)?).into_owned();
        if runs_a_program(&text) {
            tests.push(file.strip_prefix(src)?.to_string_lossy().into_owned());
        }
    }
    tests.sort();
    Ok(tests)
}

fn runs_a_program(test: &str) -> bool {
    test.lines().any(|line| {
        let Some(header) = line.trim().strip_prefix("//") else { return false };
        let header = header.trim_start();
        let header = match header.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or("", |(_, h)| h.trim_start()),
            None => header,
        };
        ["run-pass", "run-fail"].iter().any(|h| {
            header.strip_prefix(h).map_or(false, |rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
        })
    })
}

/// One run of `tests` in the ui suite, with `extra` added to every
/// compilation. Compiletest filters by substring, so each test's path
/// selects it and its revisions; `--test-args` is given in chunks because
/// the kernel limits the length of one argument.
fn run_ui(ctx: &Ctx, tests: &[String], extra: Option<&str>, what: &str, log: &Path) -> Result<(Suite, String)> {
    let step = Step::start(what);
    let began = Instant::now();
    let mut xpy = build::xpy(ctx);
    xpy.current_dir(ctx.src());
    xpy.args(["test", "--stage", "1", "--force-rerun", "--no-fail-fast", "--target", HOST, "src/test/ui"]);
    if let Some(extra) = extra {
        xpy.args(["--rustc-args", extra]);
    }
    for chunk in tests.chunks(500) {
        xpy.arg("--test-args").arg(chunk.join(" "));
    }
    let outcome = cmd::run_logged(
        &mut xpy,
        "x.py test",
        log,
        Some(Progress { counts: |l| l.starts_with("test result: "), total: Some(1), unit: "suites" }),
    );
    let took = cmd::elapsed(began.elapsed());
    let suite = parse(&fs::read_to_string(log)?).remove("ui").unwrap_or_default();
    if suite.passed + suite.failed == 0 {
        if let Err(err) = outcome {
            return Err(err.context("the ui suite did not run"));
        }
        bail!("the ui suite did not run; see {}", log.display());
    }
    println!("    {} passed, {} failed, {} ignored in {took}", suite.passed, suite.failed, suite.ignored);
    step.done();
    Ok((suite, took))
}

/// The control of the padded run: the same `--rustc-args` route with a
/// value the flag refuses must fail a test that passes plain, or the
/// padded run would prove nothing (flags that never reach the compiler).
fn rustc_args_reach_the_compiler<'a>(ctx: &Ctx, tests: &'a [String]) -> Result<&'a str> {
    let canary = tests.first().context("no run-pass test found")?;
    let log = ctx.logs().join("run-pass-control.log");
    let what = format!("control: {canary} with -Zpatchable-function-entry=256 must fail");
    let (suite, _) = run_ui(ctx, std::slice::from_ref(canary), Some("-Zpatchable-function-entry=256"), &what, &log)?;
    let refused = fs::read_to_string(&log)?.contains("incorrect value `256` for debugging option `patchable-function-entry`");
    if suite.passed != 0 || suite.failed == 0 || !refused {
        bail!("{canary} did not fail with a refused flag in --rustc-args: the padded run would not show the flags reach the compiler; see {}", log.display());
    }
    Ok(canary)
}

fn run_pass(ctx: &Ctx, started: Instant) -> Result<()> {
    let src = ctx.src();
    let head = cmd::output(git(&src).args(["rev-parse", "HEAD"]))?.trim().to_string();
    let tests = run_pass_tests(&src)?;
    println!("    {} ui tests build and run a program", tests.len());
    let canary = rustc_args_reach_the_compiler(ctx, &tests)?;
    let (plain, plain_took) = run_ui(ctx, &tests, None, "the run-pass programs, plain", &ctx.logs().join("run-pass-plain.log"))?;
    let what = format!("the run-pass programs, with {RUN_PASS_FLAGS}");
    let (padded, padded_took) = run_ui(ctx, &tests, Some(RUN_PASS_FLAGS), &what, &ctx.logs().join("run-pass-padded.log"))?;

    let only_padded: Vec<&String> = padded.failures.difference(&plain.failures).collect();
    let only_plain: Vec<&String> = plain.failures.difference(&padded.failures).collect();
    let explained = |name: &str| RUN_PASS_EXPLAINED.iter().find(|(t, _)| name.contains(t)).map(|(_, why)| *why);
    let unexplained: Vec<&&String> = only_padded.iter().filter(|n| explained(n).is_none()).collect();

    let mut doc = String::new();
    writeln!(doc, "## Every run-pass program, plain and padded\n")?;
    writeln!(doc, "How it was made: the {} ui tests of the tree that build and run a program (a `run-pass` or `run-fail` header), in the cached tree with the series applied (`{}`),", tests.len(), &head[..12])?;
    writeln!(doc, "each through `x.py test --stage 1 --force-rerun --no-fail-fast --target {HOST} src/test/ui`, twice:")?;
    writeln!(doc, "plain, and with `--rustc-args \"{RUN_PASS_FLAGS}\"`, which compiletest adds to every compilation of a test and its auxiliary crates.")?;
    writeln!(doc, "A test that passes plain and fails padded is a difference; each must be explained, or the command fails.")?;
    writeln!(doc, "Control, first: `{canary}` with `--rustc-args -Zpatchable-function-entry=256` must fail with the flag's error, or the flags would not be shown to reach the compiler.\n")?;
    writeln!(doc, "Plain run: {plain_took}; padded run: {padded_took}.\n")?;
    writeln!(doc, "| run | passed | failed | ignored |")?;
    writeln!(doc, "|---|---|---|---|")?;
    writeln!(doc, "| plain | {} | {} | {} |", plain.passed, plain.failed, plain.ignored)?;
    writeln!(doc, "| `{RUN_PASS_FLAGS}` | {} | {} | {} |", padded.passed, padded.failed, padded.ignored)?;
    writeln!(doc, "\nFail padded only: {}; unexplained: {}", only_padded.len(), unexplained.len())?;
    for name in &only_padded {
        match explained(name) {
            Some(why) => writeln!(doc, "- `{name}`: {why}")?,
            None => writeln!(doc, "- `{name}`: UNEXPLAINED")?,
        }
    }
    let both: Vec<&String> = plain.failures.intersection(&padded.failures).collect();
    list(&mut doc, "Fail plain and padded (this build's configuration, not the padding)", &both, true)?;
    list(&mut doc, "Fail plain only", &only_plain, false)?;
    write_section(&ctx.root.join("docs/REGRESSIONS.md"), "run-pass", &doc)?;
    println!("./x regressions --run-pass: done in {}; written to docs/REGRESSIONS.md", cmd::elapsed(started.elapsed()));
    if !unexplained.is_empty() {
        for name in &unexplained {
            println!("    DIFFERENCE  {name}");
        }
        bail!("{} test(s) pass plain and fail padded, unexplained", unexplained.len());
    }
    println!("0 unexplained differences ({} explained)", only_padded.len());
    Ok(())
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    build::run(ctx, &build::Args::default())?;
    if args.run_pass {
        return run_pass(ctx, started);
    }
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
    writeln!(doc, "## The codegen, assembly and ui suites, with and without the series\n")?;
    writeln!(doc, "How it was made: `x.py {}`,", xpy_args().join(" "))?;
    writeln!(doc, "once in a worktree of the cached tree at the unpatched base (`{}`, a stage1 built there with the same `config.toml`)", &base[..12])?;
    writeln!(doc, "and once in the cached tree with the series applied (`{}`); the base's results are kept and reused until `--rerun-base`.", &head[..12])?;
    writeln!(doc, "A test that fails with the series and not without it is a regression.\n")?;
    writeln!(doc, "Base run: {base_took}; run with the series: {patched_took}.\n")?;
    doc.push_str(&table);
    list(&mut doc, "Regressions (fail only with the series)", &regressions.iter().collect::<Vec<_>>(), true)?;
    list(&mut doc, "Known failures of the base on this machine, failing with the series too", &both, true)?;
    list(&mut doc, "Failing in the base only", &fixed, false)?;
    write_section(&ctx.root.join("docs/REGRESSIONS.md"), "suites", &doc)?;
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
    fn sections_replace_only_themselves() {
        let doc = with_section("", "suites", "## A\n\nold\n");
        assert!(doc.starts_with(DOC_TITLE), "{doc}");
        let doc = with_section(&doc, "run-pass", "## B\n");
        let doc = with_section(&doc, "suites", "## A\n\nnew");
        assert_eq!(
            doc,
            format!("{DOC_TITLE}\n<!-- begin suites -->\n## A\n\nnew\n<!-- end suites -->\n\n<!-- begin run-pass -->\n## B\n<!-- end run-pass -->\n")
        );
    }

    #[test]
    fn finds_the_tests_that_run_a_program() {
        assert!(runs_a_program("// run-pass\nfn main() {}\n"));
        assert!(runs_a_program("// revisions: a b\n//[a] run-pass\n// [b] run-fail\n"));
        assert!(runs_a_program("// run-fail\n// error-pattern: x\n"));
        assert!(!runs_a_program("// build-pass\n// run-passes: no\n"));
        assert!(!runs_a_program("// check-pass\nfn main() { let s = \"// run-pass\"; }\n"));
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
