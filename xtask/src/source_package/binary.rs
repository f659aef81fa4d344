//! `./x source-package --build`: the binary packages, built from the source
//! package as a Debian maintainer builds them: `dpkg-source -x` of the
//! `.dsc` into a directory of its own, then `dpkg-buildpackage -B -us -uc`
//! with Debian's `debian/rules` and config (stage 2, system LLVM 14, the
//! Windows std on amd64), in a clean environment (`env -i` with a system
//! `PATH`: the stage0 compiler is Debian's `/usr/bin/rustc`, never one of a
//! user's rustup), `DEB_BUILD_OPTIONS="nocheck parallel=N"`. `--with-tests`
//! leaves out `nocheck`, so Debian's own test step runs (`x.py test` of
//! every suite at stage 2: many hours on two cores).
//!
//! The result, in `$RUSTC_PFE_HOME/dpkg-build/`: the `.deb` files,
//! `build.log`, and `record`, what was built from what, how, and in how
//! long, which `--chroot` and the docs read.

use super::{Meta, SOURCE};
use crate::build::record_time;
use crate::cmd::{self, Progress, Step};
use crate::deps;
use crate::paths::Ctx;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The directory of the binary build.
pub fn dir(ctx: &Ctx) -> PathBuf {
    ctx.cache.join("dpkg-build")
}

/// The build's parallel jobs: as many as the machine has cores.
fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `DEB_BUILD_OPTIONS` of the build: parallel jobs as many as the machine
/// has, and `nocheck` unless the test step is wanted.
fn build_options(jobs: usize, with_tests: bool) -> String {
    let parallel = format!("parallel={jobs}");
    if with_tests {
        parallel
    } else {
        format!("nocheck {parallel}")
    }
}

/// The command the build runs, in the unpacked tree: nothing of the
/// caller's environment but `HOME`, so neither a rustup toolchain in `PATH`
/// nor a user's `RUSTFLAGS` or `CARGO_*` reach Debian's build.
pub fn build_command(tree: &Path, options: &str) -> Command {
    let mut command = clean_env(tree, options);
    command.args(["dpkg-buildpackage", "-B", "-us", "-uc"]);
    command
}

/// `env -i` with only what Debian's build is given, in `tree`; the program
/// comes next.
fn clean_env(tree: &Path, options: &str) -> Command {
    let mut command = Command::new("env");
    command
        .arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(format!("HOME={}", std::env::var("HOME").unwrap_or_else(|_| "/root".into())))
        .arg("LANG=C.UTF-8")
        .arg(format!("DEB_BUILD_OPTIONS={options}"))
        .current_dir(tree);
    command
}

/// A line of the build's log that starts one of bootstrap's steps
/// (`Building stage1 compiler artifacts ...`, `Copying stage0 std ...`,
/// `Assembling stage2 compiler`): the progress shown while it runs.
fn is_bootstrap_step(line: &str) -> bool {
    ["Building stage", "Copying stage", "Assembling stage", "Building tool", "Uplifting ", "Install "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// One binary package: its file, `Package`, `Version`, `Architecture`, size.
#[derive(Debug, Clone)]
pub struct Deb {
    pub file: PathBuf,
    pub package: String,
    pub version: String,
    pub arch: String,
    pub size: u64,
}

/// The `.deb` files in `dir`, as `dpkg-deb` reads their control fields.
pub fn debs(dir: &Path) -> Result<Vec<Deb>> {
    let mut debs = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    for file in files {
        let fields = cmd::output(Command::new("dpkg-deb").args(["-f"]).arg(&file).args([
            "Package",
            "Version",
            "Architecture",
        ]))?;
        let get = |key: &str| {
            fields.lines().find_map(|l| l.strip_prefix(&format!("{key}: "))).unwrap_or_default().trim().to_string()
        };
        let size = fs::metadata(&file)?.len();
        debs.push(Deb { package: get("Package"), version: get("Version"), arch: get("Architecture"), size, file });
    }
    Ok(debs)
}

pub fn run(ctx: &Ctx, meta: &Meta, dsc: &Path, with_tests: bool) -> Result<()> {
    let started = Instant::now();
    deps::install_build_deps("install the source package's build dependencies", dsc)?;
    let dir = dir(ctx);
    fs::create_dir_all(&dir)?;
    let tree = dir.join(meta.tree_name());
    let step = Step::start("unpack the source package (dpkg-source -x)");
    if tree.exists() {
        println!("    deleting the tree of the last build, {}", tree.display());
        fs::remove_dir_all(&tree)?;
    }
    for entry in fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = [".deb", ".ddeb", ".buildinfo", ".changes"].iter().any(|e| name.ends_with(e));
        if old || name == "record" || name == "series-tests" {
            fs::remove_file(entry.path())?;
        }
    }
    cmd::run_logged(
        Command::new("dpkg-source").env("LC_ALL", "C").arg("-x").arg(dsc).arg(&tree),
        "dpkg-source -x",
        &dir.join("dpkg-source.log"),
        None,
    )?;
    step.done();

    let options = build_options(jobs(), with_tests);
    let name = format!("dpkg-buildpackage -B of {SOURCE} {} (DEB_BUILD_OPTIONS=\"{options}\")", meta.version);
    let step = Step::start(&name);
    let begun = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))?;
    let build_started = Instant::now();
    let log = dir.join("build.log");
    let steps = cmd::run_logged(
        &mut build_command(&tree, &options),
        "dpkg-buildpackage",
        &log,
        Some(Progress { counts: is_bootstrap_step, total: None, unit: "bootstrap steps" }),
    )?;
    let wall = build_started.elapsed();
    step.done();
    record_time(ctx, "dpkg-buildpackage", build_started)?;

    let debs = debs(&dir)?;
    let ours: Vec<&Deb> = debs.iter().filter(|d| d.version == meta.version).collect();
    if ours.is_empty() || ours.len() != debs.len() {
        bail!("{} holds packages of other versions than {}: {debs:?}", dir.display(), meta.version);
    }
    let record = record_text(meta, &options, begun.trim(), wall.as_secs(), steps, &debs);
    fs::write(dir.join("record"), &record)?;
    print!("{record}");
    println!("./x source-package --build: done in {}", cmd::elapsed(started.elapsed()));
    Ok(())
}

/// The series' own tests in the build's tree, run the way Debian's test
/// step runs the whole testsuite: `debian/rules override_dh_auto_test-arch`
/// with `RUSTBUILD_TEST_FLAGS` (the subset hook `debian/rules` documents),
/// so `x.py test --stage 2 --config debian/config.toml` with Debian's
/// settings, on the stage 2 compiler the packages were made of, and the
/// same suites and names `./x test` selects (`test::SUITES`,
/// `test::FILTER`). `TEST_LOG` goes to a file of its own, so a full test
/// step's `debian/rustc-tests.log` stays. Debian's rules end a subset run
/// with a failure on purpose (`test -z "$(RUSTBUILD_TEST_FLAGS)"`: no
/// package from a partial test), so the verdict is read from what they
/// print, in this command's log: Debian's report (`Summary: exit code 0,
/// counted 0 tests failed.`), and one passing compiletest run per suite.
pub fn series_tests(ctx: &Ctx, meta: &Meta) -> Result<()> {
    let started = Instant::now();
    let dir = dir(ctx);
    let tree = dir.join(meta.tree_name());
    ensure!(
        tree.join("build/x86_64-unknown-linux-gnu/stage2/bin/rustc").is_file(),
        "no stage 2 compiler in {}: run `./x source-package --build` first",
        tree.display()
    );
    let record = fs::read_to_string(dir.join("record")).unwrap_or_default();
    let built = record_field(&record, "series").unwrap_or("unknown").to_string();
    let result_file = dir.join("series-tests");
    fs::remove_file(&result_file).ok();
    let flags = series_test_flags();
    // The test step runs only without `nocheck`.
    let mut command = clean_env(&tree, &build_options(jobs(), true));
    command
        .args(["debian/rules", "override_dh_auto_test-arch", "TEST_LOG=debian/series-tests.log"])
        .arg(format!("RUSTBUILD_TEST_FLAGS={flags}"));
    fs::remove_file(tree.join("debian/series-tests.log")).ok();
    let step = Step::start(&format!("the series' tests in the package's tree (stage 2): {flags}"));
    let log = dir.join("series-tests.log");
    // Expected to fail (see above): the verdict is Debian's report.
    let _ = cmd::run_logged(
        &mut command,
        "x.py test",
        &log,
        Some(Progress { counts: |l| l.starts_with("test [") && l.ends_with(" ... ok"), total: None, unit: "passed" }),
    );
    let text = fs::read_to_string(&log).with_context(|| format!("no {}", log.display()))?;
    let counts = match read_test_report(&text, crate::test::SUITES.len()) {
        Ok(counts) => counts,
        Err(why) => bail!("{why}; the end of {}:\n{}", log.display(), cmd::tail(&text, 30)),
    };
    step.done();
    println!("    {counts}");
    fs::write(&result_file, format!("series {built}\nversion {}\nflags {flags}\nresult {counts}\n", meta.version))?;
    println!("./x source-package --series-tests: done in {}", cmd::elapsed(started.elapsed()));
    Ok(())
}

/// `RUSTBUILD_TEST_FLAGS` for the series' tests.
fn series_test_flags() -> String {
    format!("{} --test-args '{}'", crate::test::SUITES.join(" "), crate::test::FILTER)
}

/// Debian's test report: `Summary: exit code E, counted N tests failed.`
/// must say 0 and 0, and the log must hold `suites` compiletest runs, each
/// `ok` with tests passed. Returns `N passed, M ignored, ...`.
fn read_test_report(log: &str, suites: usize) -> Result<String, String> {
    let summary = log.lines().find(|l| l.starts_with("Summary: exit code ")).ok_or("no `Summary:` line")?;
    if summary != "Summary: exit code 0, counted 0 tests failed." {
        return Err(format!("Debian's report says `{summary}`"));
    }
    let (mut passed, mut ignored, mut runs) = (0usize, 0usize, 0usize);
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            runs += 1;
            if !rest.starts_with("ok. ") {
                return Err(format!("a suite ended `{line}`"));
            }
            // `ok. 24 passed; 0 failed; 2 ignored; 0 measured; 3000 filtered out; ...`
            let counts = rest.trim_start_matches("ok. ");
            let number = |key: &str| {
                counts.split("; ").find_map(|p| p.strip_suffix(key)?.trim().parse::<usize>().ok()).unwrap_or(0)
            };
            if number(" passed") == 0 {
                return Err(format!("a suite passed no test: `{line}`"));
            }
            passed += number(" passed");
            ignored += number(" ignored");
        }
    }
    if runs != suites {
        return Err(format!("{runs} compiletest runs reported, not one per suite ({suites})"));
    }
    Ok(format!("{passed} passed, {ignored} ignored, 0 failed, in {runs} compiletest runs"))
}

/// What `record` says: enough to name the build in the docs and for
/// `--chroot` to tell which series it holds.
fn record_text(meta: &Meta, options: &str, begun: &str, wall: u64, steps: usize, debs: &[Deb]) -> String {
    let mut text = format!(
        "source {SOURCE} {}\nseries {}\nversion-line {}\ncommand dpkg-buildpackage -B -us -uc\n\
         DEB_BUILD_OPTIONS {options}\nstarted {begun}\nwall {}m{:02}s\nbootstrap-steps {steps}\n",
        meta.version,
        meta.series,
        meta.version_line(),
        wall / 60,
        wall % 60,
    );
    for deb in debs {
        let file = deb.file.file_name().unwrap_or_default().to_string_lossy();
        text.push_str(&format!("deb {} {} {} {} {file}\n", deb.package, deb.version, deb.arch, deb.size));
    }
    text
}

/// A field of `record`.
pub fn record_field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_run_only_when_asked() {
        assert_eq!(build_options(2, false), "nocheck parallel=2");
        assert_eq!(build_options(8, true), "parallel=8");
    }

    #[test]
    fn the_build_sees_none_of_the_callers_environment() {
        let command = build_command(Path::new("/tmp/t"), "nocheck parallel=2");
        let shown = cmd::show(&command);
        assert!(shown.starts_with("(cd /tmp/t && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="), "{shown}");
        assert!(shown.contains(" 'DEB_BUILD_OPTIONS=nocheck parallel=2' "), "{shown}");
        assert!(shown.ends_with(" dpkg-buildpackage -B -us -uc)"), "{shown}");
        assert!(!shown.contains(".cargo"), "{shown}");
    }

    #[test]
    fn bootstrap_steps_are_counted_from_real_lines() {
        // Lines of the log of this project's dpkg-buildpackage run.
        assert!(is_bootstrap_step("Building stage0 std artifacts (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu)"));
        assert!(is_bootstrap_step("Building stage0 compiler artifacts (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu)"));
        assert!(is_bootstrap_step(
            "Copying stage0 std from stage0 (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu / x86_64-unknown-linux-gnu)"
        ));
        assert!(!is_bootstrap_step("   Compiling core v0.0.0 (/tmp/library/core)"));
    }

    #[test]
    fn debians_report_is_read_strictly() {
        // As debian/rules prints it to make's output: x.py's output (through
        // tee), the exit code, then the report.
        let good = "test [codegen] src/test/codegen/patchable-function-entry.rs ... ok\n\
                    test result: ok. 24 passed; 0 failed; 2 ignored; 0 measured; 300 filtered out; finished in 3.10s\n\
                    test result: ok. 106 passed; 0 failed; 0 ignored; 0 measured; 9000 filtered out; finished in 40.2s\n\
                    0\n==== Debian rustc test report ====\nSpecific test failures:\n\
                    Summary: exit code 0, counted 0 tests failed.\n8 maximum allowed. Continuing...\n";
        assert_eq!(read_test_report(good, 2).as_deref(), Ok("130 passed, 2 ignored, 0 failed, in 2 compiletest runs"));
        assert!(read_test_report(good, 4).unwrap_err().contains("not one per suite"));
        let failed = good.replace("counted 0 tests failed", "counted 1 tests failed");
        assert!(read_test_report(&failed, 2).unwrap_err().contains("counted 1"));
        let exit = good.replace("exit code 0", "exit code 1");
        assert!(read_test_report(&exit, 2).is_err());
        let suite = good.replace("test result: ok. 106", "test result: FAILED. 106");
        assert!(read_test_report(&suite, 2).unwrap_err().contains("FAILED"));
        let none = good.replace("ok. 24 passed", "ok. 0 passed");
        assert!(read_test_report(&none, 2).unwrap_err().contains("passed no test"));
        assert!(read_test_report("test result: ok. 3 passed;\n", 1).is_err());
    }

    #[test]
    fn the_series_tests_are_the_ones_x_test_selects() {
        assert_eq!(
            series_test_flags(),
            "src/test/codegen src/test/assembly src/test/ui src/test/incremental \
             --test-args 'patchable instrument-mcount no-jump-tables'"
        );
    }

    #[test]
    fn the_record_names_the_series_and_every_package() {
        let meta = super::super::tests::meta();
        let debs = [Deb {
            file: PathBuf::from("/x/rustc_1.63.0+dfsg1-2pfe1_amd64.deb"),
            package: "rustc".into(),
            version: meta.version.clone(),
            arch: "amd64".into(),
            size: 3,
        }];
        let text = record_text(&meta, "nocheck parallel=2", "2026-12-08T01:01:44Z", 3725, 40, &debs);
        assert_eq!(record_field(&text, "series"), Some(meta.series.as_str()));
        assert_eq!(record_field(&text, "wall"), Some("62m05s"));
        assert!(text.contains("deb rustc 1.63.0+dfsg1-2pfe1 amd64 3 rustc_1.63.0+dfsg1-2pfe1_amd64.deb\n"), "{text}");
    }
}
