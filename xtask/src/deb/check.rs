//! `./x deb --check`: the package installed with `apt-get`, used as a
//! person would use it (in a scratch directory, with none of the driver's
//! environment, in a mount namespace where the cache's toolchain and rustc
//! tree are hidden), then purged, and every path it installed checked gone.
//! Its own module, so that changing the check does not make `./x deb`
//! rebuild the package (whose key holds `deb.rs`).

use super::{COMMANDS, PACKAGE, PREFIX};
use crate::cmd::{self, Step};
use crate::deps;
use crate::paths::{Ctx, CROSS};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the check proved, one line each, for the summary.
struct Proofs(Vec<String>);

impl Proofs {
    fn add(&mut self, line: String) {
        println!("    ok: {line}");
        self.0.push(line);
    }
}

pub fn run(ctx: &Ctx, deb: &Path) -> Result<()> {
    if cmd::output(Command::new("id").arg("-u"))?.trim() != "0" {
        bail!("`./x deb --check` installs and purges the package with apt-get: run it as root");
    }
    if deps::which("apt-get").is_none() {
        bail!("apt-get not found: `./x deb --check` needs a Debian 12 system");
    }
    let status = package_status(PACKAGE)?;
    if !status.is_empty() && status != "not-installed" {
        bail!(
            "{PACKAGE} is on this system ({status}); the check installs the package it built and \
             purges it at the end, which would remove yours: `apt-get purge {PACKAGE}` first"
        );
    }
    let scratch = ctx.cache.join("deb/check");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    let mut proofs = Proofs(Vec::new());
    resolve_from_nothing(deb, &scratch, &mut proofs)?;
    let installed = install(deb, &mut proofs);
    let used = match &installed {
        Ok(files) => inspect(ctx, files, &mut proofs).and_then(|()| use_it(ctx, &scratch, &mut proofs)),
        Err(_) => Ok(()),
    };
    // Whatever happened, the package does not stay installed.
    let purged = purge(installed.as_ref().ok(), &mut proofs);
    for (what, err) in [("install", installed.as_ref().err()), ("use", used.as_ref().err()), ("purge", purged.as_ref().err())] {
        if let Some(err) = err {
            eprintln!("error in the check's {what} step: {err:#}");
        }
    }
    installed?;
    used?;
    purged?;
    println!("./x deb --check: what was verified");
    for line in &proofs.0 {
        println!("    - {line}");
    }
    Ok(())
}

/// What apt would install on a machine with nothing installed: `apt-get
/// -s` with an empty dpkg status file resolves every dependency of the
/// package (and theirs) from the system's configured Debian archive. Where
/// the check runs the dependencies are usually installed already, so the
/// real install below resolves nothing.
fn resolve_from_nothing(deb: &Path, scratch: &Path, proofs: &mut Proofs) -> Result<()> {
    let depends = cmd::output(Command::new("dpkg-deb").args(["--field"]).arg(deb).arg("Depends"))?;
    // The first alternative of each: what apt picks when it can.
    let mut wanted: Vec<String> = Vec::new();
    for name in depends.split(',').filter_map(|d| d.split('|').next()?.split_whitespace().next()) {
        if !wanted.iter().any(|w| w == name) {
            wanted.push(name.to_string());
        }
    }
    let status = scratch.join("empty-dpkg-status");
    fs::write(&status, "")?;
    let dir = deb.parent().context("the package has no directory")?;
    let plan = cmd::output(
        Command::new("apt-get")
            .current_dir(dir)
            .args(["-s", "-q", "-o"])
            .arg(format!("Dir::State::status={}", status.display()))
            .arg("install")
            .arg(format!("./{}", file_name(deb))),
    )?;
    let planned: BTreeMap<&str, &str> = plan
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(" (")?;
            Some((name, rest.split_whitespace().next()?))
        })
        .collect();
    let missing: Vec<&String> = wanted.iter().filter(|w| !planned.contains_key(w.as_str())).collect();
    if !planned.contains_key(PACKAGE) || !missing.is_empty() {
        bail!("`apt-get -s` on an empty system does not install {PACKAGE} with {missing:?}:\n{}", cmd::tail(&plan, 20));
    }
    proofs.add(format!(
        "on a machine with nothing installed (`apt-get -s` with an empty dpkg status), apt resolves the package \
         from the configured Debian archive: {} packages, among them {}",
        planned.len(),
        wanted.iter().map(|w| format!("{w} {}", planned[w.as_str()])).collect::<Vec<_>>().join(", ")
    ));
    Ok(())
}

/// `dpkg-query`'s status of `package` (`installed`, `config-files`, ...),
/// empty if dpkg never knew it.
fn package_status(package: &str) -> Result<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn installed_packages() -> Result<BTreeSet<String>> {
    let out = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Package}:${Architecture} ${db:Status-Status}\n"]))?;
    Ok(out.lines().filter_map(|l| l.strip_suffix(" installed")).map(String::from).collect())
}

/// Nothing on the system owns or occupies the paths the package adds, then
/// `apt-get install ./<file>`; its files verify and Debian's rustc and
/// cargo are untouched. Returns what `dpkg -L` lists.
fn install(deb: &Path, proofs: &mut Proofs) -> Result<Vec<String>> {
    let step = Step::start(&format!("apt-get install ./{}", file_name(deb)));
    let mut ours = vec![format!("/{PREFIX}"), format!("/usr/share/doc/{PACKAGE}")];
    for (command, _) in COMMANDS {
        ours.push(format!("/usr/bin/{command}"));
        ours.push(format!("/usr/share/man/man1/{command}.1.gz"));
    }
    for path in &ours {
        if let Some(package) = owner(path) {
            bail!("{path} belongs to {package}: {PACKAGE} would clash with it");
        }
        if Path::new(path).symlink_metadata().is_ok() {
            bail!("{path} is on this system, and no package owns it: {PACKAGE} would overwrite it");
        }
    }
    let before = installed_packages()?;
    let debian = ["rustc", "cargo", "libstd-rust-dev"];
    let verify_debian = || cmd::output(Command::new("dpkg").arg("--verify").args(debian));
    let debian_before = verify_debian()?;
    let dir = deb.parent().context("the package has no directory")?;
    cmd::run(
        Command::new("apt-get")
            .current_dir(dir)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q"])
            .arg(format!("./{}", file_name(deb))),
    )?;
    let after = installed_packages()?;
    let pulled: Vec<&str> =
        after.difference(&before).map(String::as_str).filter(|p| !p.starts_with(&format!("{PACKAGE}:"))).collect();
    proofs.add(format!(
        "`apt-get install ./{}` installed it{}",
        file_name(deb),
        if pulled.is_empty() {
            " (every dependency was installed here already)".to_string()
        } else {
            format!(", apt resolving and installing {}", pulled.join(", "))
        }
    ));
    let verify = cmd::output(Command::new("dpkg").args(["--verify", PACKAGE]))?;
    if !verify.trim().is_empty() {
        bail!("`dpkg --verify {PACKAGE}` found files that differ from the package's md5sums:\n{}", cmd::tail(&verify, 20));
    }
    let debian_after = verify_debian()?;
    if debian_after != debian_before {
        bail!("installing {PACKAGE} changed files of Debian's {}:\n{debian_after}", debian.join(", "));
    }
    proofs.add(format!(
        "`dpkg --verify {PACKAGE}` matches every file to its md5sum; `dpkg --verify {}` says \
         what it said before",
        debian.join(" ")
    ));
    let files: Vec<String> = cmd::output(Command::new("dpkg-query").args(["-L", PACKAGE]))?.lines().map(String::from).collect();
    step.done();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The packages that own `path`, if any (`dpkg-query -S`).
fn owner(path: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-S", path]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter_map(|l| l.rsplit_once(": ")).find(|(_, p)| *p == path).map(|(owners, _)| owners.to_string())
}

/// What `dpkg -L` lists: nothing in or through the cache; the commands in
/// PATH are the package's.
fn inspect(ctx: &Ctx, files: &[String], proofs: &mut Proofs) -> Result<()> {
    let cache = fs::canonicalize(&ctx.cache)?;
    let into_cache: Vec<&String> = files
        .iter()
        .filter(|f| {
            f.starts_with(&*ctx.cache.to_string_lossy())
                || fs::canonicalize(f).is_ok_and(|real| real.starts_with(&cache))
        })
        .collect();
    if !into_cache.is_empty() {
        bail!("`dpkg -L {PACKAGE}` lists paths in or resolving into the cache:\n{into_cache:?}");
    }
    let regular = files.iter().filter(|f| Path::new(f).symlink_metadata().is_ok_and(|m| m.is_file())).count();
    proofs.add(format!(
        "`dpkg -L {PACKAGE}` lists {} paths ({regular} files), none in or resolving into {}",
        files.len(),
        ctx.cache.display()
    ));
    for (command, _) in COMMANDS {
        let found = deps::which(command).with_context(|| format!("{command} is not in PATH after the install"))?;
        if found != Path::new("/usr/bin").join(command) {
            bail!("{command} in PATH is {}, not /usr/bin/{command}", found.display());
        }
    }
    proofs.add(format!("{} are in PATH, in /usr/bin", COMMANDS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")));
    Ok(())
}

/// Mounts an empty read-only directory over the cache's toolchain and rustc
/// tree, then runs the rest: in that mount namespace only the package can
/// provide the compiler, its libraries and the library sources.
const HIDE_CACHE: &str = "mount -t tmpfs -o ro,size=4k rustc-pfe-hidden \"$1\" && \
                          mount -t tmpfs -o ro,size=4k rustc-pfe-hidden \"$2\" && shift 2 && exec \"$@\"";

/// `program` run as a person would (none of the driver's environment), in
/// `dir`, with the cache's toolchain and rustc tree hidden.
fn person(ctx: &Ctx, dir: &Path, program: &str) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--", "sh", "-c", HIDE_CACHE, "hide-cache"])
        .arg(ctx.toolchain())
        .arg(ctx.src())
        .arg(program)
        .current_dir(dir);
    cmd::as_user(&mut command);
    command
}

/// pfe-check's report in total, from its `--expect N,M: a/b functions
/// match` line per object: `a/b functions in n objects match`.
fn summary(report: &str) -> String {
    let (mut matching, mut functions, mut objects) = (0, 0, 0);
    for line in report.lines() {
        let Some(counts) = line.trim().strip_prefix("--expect ").and_then(|l| l.split_once(": ")).map(|(_, c)| c) else {
            continue;
        };
        let Some((a, b)) = counts.strip_suffix(" functions match").and_then(|c| c.split_once('/')) else { continue };
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            matching += a;
            functions += b;
            objects += 1;
        }
    }
    format!("{matching}/{functions} functions in {objects} object{} match", if objects == 1 { "" } else { "s" })
}

/// The toolchain used as its man pages say, with the cache hidden.
fn use_it(ctx: &Ctx, scratch: &Path, proofs: &mut Proofs) -> Result<()> {
    let step = Step::start("use the installed toolchain (the cache's toolchain and rustc tree hidden)");
    let sysroot = cmd::output(person(ctx, scratch, "rustc-pfe").args(["--print", "sysroot"]))?;
    if sysroot.trim() != format!("/{PREFIX}") {
        bail!("`rustc-pfe --print sysroot` says {}, not /{PREFIX}", sysroot.trim());
    }
    let version = cmd::output(person(ctx, scratch, "rustc-pfe").arg("-V"))?;
    proofs.add(format!("`rustc-pfe -V`: {}; `rustc-pfe --print sysroot`: /{PREFIX}", version.trim()));

    // Padding, audited; and an unpadded object, which the audit must refuse.
    fs::write(
        scratch.join("pad.rs"),
        "//! Two functions for pfe-check.\n#![crate_type = \"lib\"]\n\
         #[no_mangle]\npub fn pfe_add(a: u64, b: u64) -> u64 {\n    a.wrapping_add(b)\n}\n\
         #[no_mangle]\npub fn pfe_mul(a: u64, b: u64) -> u64 {\n    a.wrapping_mul(b)\n}\n",
    )?;
    cmd::output(person(ctx, scratch, "rustc-pfe").args(["-O", "-Zpatchable-function-entry=16,16", "--emit=obj", "-o", "pad.o", "pad.rs"]))?;
    let audit = cmd::output(person(ctx, scratch, "pfe-check").args(["--expect", "16,16", "pad.o"]))?;
    cmd::output(person(ctx, scratch, "rustc-pfe").args(["-O", "--emit=obj", "-o", "nopad.o", "pad.rs"]))?;
    let mut refuse = person(ctx, scratch, "pfe-check");
    refuse.args(["--expect", "16,16", "nopad.o"]);
    let status = refuse.output().with_context(|| format!("cannot start `{}`", cmd::show(&refuse)))?.status;
    if status.code() != Some(1) {
        bail!("`{}` exited with {status}, not 1: the audit does not tell an unpadded object", cmd::show(&refuse));
    }
    proofs.add(format!(
        "`rustc-pfe -O -Zpatchable-function-entry=16,16 --emit=obj pad.rs`: `pfe-check --expect 16,16 pad.o` \
         accepts it ({}); the same file compiled without the flag it refuses (exit 1)",
        summary(&audit)
    ));

    // The aarch64 std: a program compiled against it, then linked and run
    // when the cross gcc and qemu are there (the package only suggests them).
    fs::write(scratch.join("hello.rs"), "fn main() {\n    println!(\"hello from aarch64\");\n}\n")?;
    cmd::output(person(ctx, scratch, "rustc-pfe").args([
        "--target", CROSS, "-O", "-Zpatchable-function-entry=2", "--emit=obj", "-o", "hello-aarch64.o", "hello.rs",
    ]))?;
    let audit = cmd::output(person(ctx, scratch, "pfe-check").args(["--expect", "2", "hello-aarch64.o"]))?;
    let mut line = format!(
        "`rustc-pfe --target {CROSS} -Zpatchable-function-entry=2` compiles a std program; \
         `pfe-check --expect 2` accepts it ({})",
        summary(&audit)
    );
    if deps::which("aarch64-linux-gnu-gcc").is_some() {
        cmd::output(person(ctx, scratch, "rustc-pfe").args([
            "--target", CROSS, "-C", "linker=aarch64-linux-gnu-gcc", "-o", "hello-aarch64", "hello.rs",
        ]))?;
        line.push_str("; linked with aarch64-linux-gnu-gcc");
        if deps::which("qemu-aarch64").is_some() && Path::new("/usr/aarch64-linux-gnu").is_dir() {
            let said = cmd::output(person(ctx, scratch, "qemu-aarch64").args(["-L", "/usr/aarch64-linux-gnu", "./hello-aarch64"]))?;
            if said.trim() != "hello from aarch64" {
                bail!("the aarch64 program printed {said:?}");
            }
            line.push_str(", it runs under qemu-aarch64");
        }
    }
    proofs.add(line);

    cargo_crate(ctx, scratch, proofs)?;
    kernel(ctx, scratch, proofs)?;
    step.done();
    Ok(())
}

/// The crates.io dependency of the check's crate: the newest itoa whose
/// `rust-version` rustc 1.63 meets (1.0.16 asks for 1.68). Cargo 1.65 does
/// not choose versions by `rust-version`, so the crate pins it.
const ITOA: &str = "1.0.15";

/// A crate with a crates.io dependency, a proc-macro of its own, a unit test
/// and a doctest, through `cargo-pfe build` and `cargo-pfe test`, padded.
fn cargo_crate(ctx: &Ctx, scratch: &Path, proofs: &mut Proofs) -> Result<()> {
    let krate = scratch.join("crate");
    fs::create_dir_all(krate.join("src"))?;
    fs::create_dir_all(krate.join("answer/src"))?;
    fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"pfe-deb-check\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nitoa = \"={ITOA}\"\nanswer = {{ path = \"answer\" }}\n"
        ),
    )?;
    fs::write(
        krate.join("src/lib.rs"),
        "//! `./x deb --check`'s crate: a crates.io dependency and a proc-macro.\n\n\
         /// The decimal digits of `n`.\n///\n/// ```\n/// assert_eq!(pfe_deb_check::decimal(1063), \"1063\");\n/// ```\n\
         pub fn decimal(n: u64) -> String {\n    itoa::Buffer::new().format(n).to_string()\n}\n\n\
         /// The number `answer!()` expands to.\npub fn answer() -> u64 {\n    answer::answer!()\n}\n\n\
         #[cfg(test)]\nmod tests {\n    #[test]\n    fn answer_in_decimal() {\n        \
         assert_eq!(super::decimal(super::answer()), \"42\");\n    }\n}\n",
    )?;
    fs::write(
        krate.join("answer/Cargo.toml"),
        "[package]\nname = \"answer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nproc-macro = true\n",
    )?;
    fs::write(
        krate.join("answer/src/lib.rs"),
        "//! A function-like proc-macro: `answer!()` is `42`.\nuse proc_macro::TokenStream;\n\n\
         /// Expands to `42`.\n#[proc_macro]\npub fn answer(_: TokenStream) -> TokenStream {\n    \"42\".parse().unwrap()\n}\n",
    )?;
    let flags = "-Zpatchable-function-entry=16,16";
    let log = ctx.logs().join("deb-check-cargo-build.log");
    cmd::run_logged(person(ctx, &krate, "cargo-pfe").env("RUSTFLAGS", flags).arg("build"), "cargo-pfe build", &log, None)?;
    let built = fs::read_to_string(&log).unwrap_or_default();
    let itoa = built
        .lines()
        .find_map(|l| l.trim().strip_prefix("Compiling itoa "))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .with_context(|| format!("`cargo-pfe build` did not compile itoa; see {}", log.display()))?;
    let deps_dir = krate.join("target/debug/deps");
    let mut rlibs: Vec<PathBuf> = fs::read_dir(&deps_dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = file_name(p);
            (name.starts_with("libitoa-") || name.starts_with("libpfe_deb_check-")) && name.ends_with(".rlib")
        })
        .collect();
    rlibs.sort();
    if rlibs.len() != 2 {
        bail!("`cargo-pfe build` left {} rlibs of itoa and the crate in {}, not 2", rlibs.len(), deps_dir.display());
    }
    let audit = cmd::output(person(ctx, &krate, "pfe-check").args(["--expect", "16,16"]).args(&rlibs))?;
    let log = ctx.logs().join("deb-check-cargo-test.log");
    cmd::run_logged(person(ctx, &krate, "cargo-pfe").env("RUSTFLAGS", flags).arg("test"), "cargo-pfe test", &log, None)?;
    let tested = fs::read_to_string(&log).unwrap_or_default();
    // libtest's summaries: the unit tests', then the doctests' after cargo's
    // `Doc-tests <package>` line.
    let (units, docs) = tested.split_once("Doc-tests ").unwrap_or((&tested, ""));
    let counts = |text: &str| -> [usize; 3] {
        text.lines().filter_map(crate::test::summary_counts).fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]])
    };
    let (units, docs) = (counts(units), counts(docs));
    if units[0] < 1 || docs[0] < 1 || units[1] + docs[1] != 0 {
        bail!(
            "`cargo-pfe test` did not pass the unit test and the doctest (unit tests {} passed, {} failed; \
             doctests {} passed, {} failed); see {}",
            units[0],
            units[1],
            docs[0],
            docs[1],
            log.display()
        );
    }
    let passed = units[0] + docs[0];
    proofs.add(format!(
        "`cargo-pfe build` and `cargo-pfe test` (RUSTFLAGS={flags}) of a crate with itoa {itoa} from crates.io \
         and a proc-macro of its own: {passed} tests passed, a unit test and a doctest (run by rustdoc-pfe); \
         `pfe-check --expect 16,16` accepts the rlibs of itoa and the crate ({})",
        summary(&audit)
    ));
    Ok(())
}

/// kbuild with `RUSTC=/usr/bin/rustc-pfe` in the kernel tree `./x kernel`
/// unpacked (with its bindgen), building into a directory of its own:
/// `make rustavailable`, then tinyconfig with `CONFIG_RUST` and `make
/// prepare`, which in 6.1 builds the kernel's Rust crates (`core` from the
/// package's library sources, `compiler_builtins`, `alloc`, `bindings`, the
/// `macros` proc-macro, `kernel`); every object rustc made is audited.
/// Without that tree it says so and proves nothing about the kernel.
fn kernel(ctx: &Ctx, scratch: &Path, proofs: &mut Proofs) -> Result<()> {
    let dir = ctx.cache.join("kernel");
    let tree = dir.join("linux-source-6.1");
    let bindgen = dir.join("bindgen-0.56.0/bin/bindgen");
    if !tree.join("Makefile").is_file() || !bindgen.is_file() {
        let line = format!(
            "NOT CHECKED: the kernel recipe (no {} or no {}; `./x kernel` makes them)",
            tree.display(),
            bindgen.display()
        );
        println!("    {line}");
        proofs.0.push(line);
        return Ok(());
    }
    let out = scratch.join("kernel");
    fs::create_dir_all(&out)?;
    let rustc = "/usr/bin/rustc-pfe";
    let flags = "-Zpatchable-function-entry=16,16";
    let make = |target: &str| {
        let mut make = person(ctx, scratch, "make");
        make.arg("-C").arg(&tree).arg(format!("O={}", out.display()));
        make.args(["LLVM=-14", &format!("RUSTC={rustc}"), &format!("HOSTRUSTC={rustc}")]);
        make.arg(format!("BINDGEN={}", bindgen.display()));
        make.arg(format!("KRUSTFLAGS={flags}"));
        make.arg(target);
        make
    };
    let logs = ctx.logs().join("deb-check-kernel");
    let log = logs.join("rustavailable.log");
    cmd::run_logged(&mut make("rustavailable"), "make rustavailable", &log, None)?;
    if !fs::read_to_string(&log).unwrap_or_default().contains("Rust is available!") {
        bail!("`make rustavailable` with RUSTC={rustc} did not say \"Rust is available!\"; see {}", log.display());
    }
    cmd::run_logged(&mut make("tinyconfig"), "make tinyconfig", &logs.join("tinyconfig.log"), None)?;
    let config = out.join(".config");
    cmd::output(Command::new(tree.join("scripts/config")).arg("--file").arg(&config).args(["-e", "64BIT", "-e", "RUST"]))?;
    cmd::run_logged(&mut make("olddefconfig"), "make olddefconfig", &logs.join("olddefconfig.log"), None)?;
    if !fs::read_to_string(&config)?.lines().any(|l| l == "CONFIG_RUST=y") {
        bail!("kconfig dropped CONFIG_RUST from {} with RUSTC={rustc}", config.display());
    }
    cmd::run_logged(make("prepare").arg("-j2"), "make prepare", &logs.join("prepare.log"), None)?;
    // kbuild's `.NAME.o.cmd` says which compiler made each object.
    let mut objects = Vec::new();
    for entry in fs::read_dir(out.join("rust"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".o") else { continue };
        let made = fs::read_to_string(out.join("rust").join(format!(".{stem}.o.cmd"))).unwrap_or_default();
        if made.lines().next().is_some_and(|l| l.contains(rustc)) {
            objects.push((stem.to_string(), made));
        }
    }
    objects.sort();
    let source = format!("/{PREFIX}/lib/rustlib/src/rust/library/core/src/lib.rs");
    if !objects.iter().any(|(stem, made)| stem == "core" && made.contains(&source)) {
        bail!("kbuild made no rust/core.o with {rustc} from {source}; see {}", logs.join("prepare.log").display());
    }
    let names: Vec<&str> = objects.iter().map(|(stem, _)| stem.as_str()).collect();
    let files: Vec<PathBuf> = names.iter().map(|stem| out.join("rust").join(format!("{stem}.o"))).collect();
    let audit = cmd::output(person(ctx, scratch, "pfe-check").args(["--expect", "16,16"]).args(&files))?;
    proofs.add(format!(
        "Linux 6.1 ({}) with RUSTC={rustc}: `make rustavailable` says Rust is available, kconfig keeps \
         CONFIG_RUST=y, and `make prepare` (KRUSTFLAGS={flags}) builds the kernel's Rust crates with it, \
         core from {source}; `pfe-check --expect 16,16` accepts every object rustc made, rust/{{{}}}.o ({})",
        tree.display(),
        names.join(","),
        summary(&audit)
    ));
    Ok(())
}

/// `apt-get purge`, then every path `dpkg -L` listed is gone, but for
/// directories other packages still own (`/usr/bin`, ...).
fn purge(files: Option<&Vec<String>>, proofs: &mut Proofs) -> Result<()> {
    let status = package_status(PACKAGE)?;
    if status.is_empty() || status == "not-installed" {
        return Ok(());
    }
    let step = Step::start(&format!("apt-get purge {PACKAGE}"));
    cmd::run(Command::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive").args(["purge", "-y", "-q", PACKAGE]))?;
    let status = package_status(PACKAGE)?;
    if !status.is_empty() && status != "not-installed" {
        bail!("after `apt-get purge {PACKAGE}` dpkg says it is {status}");
    }
    let Some(files) = files else { return Ok(()) };
    let mut left = Vec::new();
    let mut shared = 0;
    // dpkg lists `/.` for every package.
    for file in files.iter().filter(|f| *f != "/.") {
        let Ok(meta) = Path::new(file).symlink_metadata() else { continue };
        if meta.is_dir() && owner(file).is_some() {
            shared += 1;
        } else {
            left.push(file.as_str());
        }
    }
    if !left.is_empty() {
        bail!("`apt-get purge {PACKAGE}` left behind:\n{}", left.join("\n"));
    }
    proofs.add(format!(
        "`apt-get purge {PACKAGE}` removed every one of the {} paths `dpkg -L` listed, but for the {shared} \
         directories other packages own too (/usr/bin, /usr/share/man/man1, ...); dpkg no longer knows it",
        files.len()
    ));
    step.done();
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_summary_adds_up_every_object() {
        let report = "a.o (relocatable x86_64): 11 functions, 11 with a record; 11 records in 11 sections (flags awo), 0 orphans\n  \
                      --expect 16,16: 11/11 functions match\n\
                      b.o (relocatable x86_64): 3 functions, 3 with a record; 3 records in 3 sections (flags awo), 0 orphans\n  \
                      --expect 16,16: 2/3 functions match\n";
        assert_eq!(super::summary(report), "13/14 functions in 2 objects match");
        assert_eq!(super::summary(""), "0/0 functions in 0 objects match");
    }
}
