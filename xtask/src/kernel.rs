//! `./x kernel`: the patched toolchain on its first real user. Debian 12's
//! Linux 6.1 (`linux-source-6.1`) configured small with `CONFIG_RUST` and the
//! Rust minimal sample built in, built with the x86 call-padding shape
//! (`=16,16`, functions 16-aligned), every rustc-built object audited with
//! the toolchain's `pfe-check`, and booted under `qemu-system-x86_64` (TCG)
//! until the sample prints. Not part of `./x test`: a cold run takes about
//! 4 minutes on two cores (docs/KERNEL.md has the measured figures).
//!
//! It uses the toolchain `./x build` left in the cache and never builds one.
//! The kernel tree is unpacked once and never edited: the build goes to its
//! own directory (`make O=`). See docs/KERNEL.md for the recipe by hand.

use crate::build::record_time;
use crate::cmd::{self, Step};
use crate::deps;
use crate::paths::Ctx;
use crate::series::write_if_changed;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Args {
    /// Parallel jobs for the kernel build (`make -jN`, `--jobs N`).
    pub jobs: usize,
    /// Seconds the boot may take before the sample's line must be there.
    pub boot_timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Args { jobs: 2, boot_timeout: 300 }
    }
}

/// Debian 12's kernel source: the first kernel with Rust (x86_64 only).
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The directory the tarball unpacks to.
const TREE: &str = "linux-source-6.1";
/// What 6.1 pins: bindgen 0.56.0 (`scripts/min-tool-version.sh`).
const BINDGEN_VERSION: &str = "0.56.0";
/// The x86 call-padding shape: 16 nops before each function, none after, the
/// pad (and so the function) 16-aligned, as `CONFIG_CALL_PADDING` kernels
/// (6.2 and later) ask of C with `-fpatchable-function-entry=16,16
/// -falign-functions=16`. 6.1 passes extra Rust flags through `KRUSTFLAGS`
/// (newer trees: `KBUILD_RUSTFLAGS`).
pub const RUST_FLAGS: &str = "-Zpatchable-function-entry=16,16 -Zmin-function-alignment=16";
const EXPECT: &str = "16,16";
const ALIGN: u64 = 16;
/// What the Rust minimal sample prints first (`pr_info!` with its module's
/// name as the prefix).
const SAMPLE_LINE: &str = "rust_minimal: Rust minimal sample (init)";

/// What the kernel build and boot need beyond `./x build`'s packages: the
/// source, kbuild's tools, clang/lld/llvm 14 (`LLVM=-14`), libclang for
/// bindgen, `xz` for tinyconfig's compressed image, and qemu.
const PACKAGES: &[&str] = &[
    "linux-source-6.1",
    "make",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "clang-14",
    "lld-14",
    "llvm-14",
    "libclang-14-dev",
    "xz-utils",
    "qemu-system-x86",
];

/// tinyconfig plus what this test needs. 6.1 on x86 builds a 32-bit kernel
/// from tinyconfig unless asked; the console lines are what a serial boot
/// needs to show `pr_info!`; `CONFIG_WERROR` would turn the warning on
/// `#![feature(nll)]` in 6.1's `rust/alloc` (stable since 1.63) into an
/// error, and the tree stays unedited.
const FRAGMENT: &str = "\
CONFIG_64BIT=y
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BINFMT_ELF=y
CONFIG_RUST=y
CONFIG_SAMPLES=y
CONFIG_SAMPLES_RUST=y
CONFIG_SAMPLE_RUST_MINIMAL=y
# CONFIG_WERROR is not set
";

/// Where everything lives: `$RUSTC_PFE_HOME/kernel/`.
struct Paths {
    dir: PathBuf,
}

impl Paths {
    fn src(&self) -> PathBuf {
        self.dir.join(TREE)
    }
    /// kbuild's output directory (`make O=`).
    fn out(&self) -> PathBuf {
        self.dir.join("build")
    }
    fn bindgen(&self) -> PathBuf {
        self.dir.join(format!("bindgen-{BINDGEN_VERSION}")).join("bin/bindgen")
    }
}

/// The toolchain `./x build` left: what kbuild is given by path.
struct Toolchain {
    rustc: PathBuf,
    rustdoc: Option<PathBuf>,
    pfe_check: PathBuf,
    /// `RUST_LIB_SRC`, when the sysroot has no `lib/rustlib/src/rust`.
    lib_src: Option<PathBuf>,
    /// Changes whenever the compiler does (kbuild does not track it).
    key: String,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    let tc = toolchain(ctx)?;
    deps::install("install the kernel's Debian packages", PACKAGES)?;
    let paths = Paths { dir: ctx.cache.join("kernel") };
    fs::create_dir_all(&paths.dir)?;
    bindgen(ctx, &paths)?;
    unpack(ctx, &paths)?;
    configure(ctx, &paths, &tc)?;
    let built = compile(ctx, &paths, &tc, args)?;
    let audit = audit(ctx, &paths, &tc)?;
    let boot = boot(ctx, &paths, args)?;
    println!("./x kernel: done in {}", cmd::elapsed(started.elapsed()));
    match built {
        Some(time) => println!("    build (make -j{}): {}", args.jobs, cmd::elapsed(time)),
        None => println!("    build: current (kbuild had nothing to do)"),
    }
    println!(
        "    audit: {} functions in {} rustc-built objects, all --expect {EXPECT}, {}",
        audit.functions, audit.objects, audit.aligned
    );
    println!("    boot to the Rust sample (qemu TCG): {:.1}s", boot.as_secs_f64());
    Ok(())
}

/// The toolchain's rustc and pfe-check, or a clear error: this command never
/// builds them. The compiler must know `-Zmin-function-alignment`.
fn toolchain(ctx: &Ctx) -> Result<Toolchain> {
    let bin = ctx.toolchain().join("bin");
    let rustc = bin.join("rustc");
    let pfe_check = bin.join("pfe-check");
    for tool in [&rustc, &pfe_check] {
        if !tool.is_file() {
            bail!(
                "no {}: `./x kernel` uses the toolchain `./x build` makes and never builds one; \
                 run `./x build` first",
                tool.display()
            );
        }
    }
    let version = cmd::output(Command::new(&rustc).arg("-vV"))?;
    let options = cmd::output(Command::new(&rustc).args(["-Z", "help"]))?;
    for flag in ["patchable-function-entry", "min-function-alignment"] {
        if !options.contains(&format!("{flag}=")) {
            bail!(
                "{} does not know -Z{flag}: it predates the series that adds it; \
                 rebuild the toolchain with `./x build`",
                rustc.display()
            );
        }
    }
    let rustdoc = Some(bin.join("rustdoc")).filter(|p| p.is_file());
    let sysroot = PathBuf::from(cmd::output(Command::new(&rustc).args(["--print", "sysroot"]))?.trim());
    let core = |library: &Path| library.join("core/src/lib.rs").is_file();
    let lib_src = if core(&sysroot.join("lib/rustlib/src/rust/library")) {
        None
    } else if core(&ctx.src().join("library")) {
        Some(ctx.src().join("library"))
    } else {
        bail!(
            "the kernel builds `core` from source, and neither {} nor {} has it",
            sysroot.join("lib/rustlib/src/rust/library").display(),
            ctx.src().join("library").display()
        );
    };
    // The compiler is librustc_driver; bin/rustc is a small launcher.
    let mut key = version;
    for entry in fs::read_dir(sysroot.join("lib"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("librustc_driver-") {
            let meta = entry.metadata()?;
            let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_secs();
            key.push_str(&format!("{name} {} {mtime}\n", meta.len()));
        }
    }
    Ok(Toolchain { rustc, rustdoc, pfe_check, lib_src, key })
}

/// `cmd` without what `./x` and `cargo run` put in the driver's environment
/// (as `build::xpy` does): a kernel build or `cargo install` must not see the
/// driver's target directory, library path or toolchain override.
fn clean(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO")
            || name.starts_with("RUSTC")
            || name == "RUSTFLAGS"
            || name == "LD_LIBRARY_PATH"
            || name == "RUSTUP_TOOLCHAIN"
            || name == "RUST_RECURSION_COUNT"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// bindgen 0.56.0 (what 6.1 pins), installed with the host's cargo into the
/// cache; it finds libclang 14 at run time.
fn bindgen(ctx: &Ctx, paths: &Paths) -> Result<()> {
    let bin = paths.bindgen();
    if bin.is_file() {
        let out = cmd::output(Command::new(&bin).arg("--version")).unwrap_or_default();
        if out.contains(&format!("bindgen {BINDGEN_VERSION}")) {
            Step::skip(&format!("install bindgen {BINDGEN_VERSION}"), "installed");
            return Ok(());
        }
    }
    let step = Step::start(&format!("install bindgen {BINDGEN_VERSION} (cargo install --locked)"));
    let root = bin.parent().and_then(Path::parent).context("bindgen's path has no root")?;
    let log = ctx.logs().join("kernel-bindgen.log");
    println!("    log: {}", log.display());
    cmd::run_logged(
        clean(&mut Command::new("cargo"))
            .args(["install", "--locked", "bindgen", "--version", BINDGEN_VERSION, "--root"])
            .arg(root)
            .current_dir(&paths.dir),
        "cargo install bindgen",
        &log,
        None,
    )?;
    step.done();
    Ok(())
}

/// The tarball as found (path, size, mtime): a new `linux-source-6.1`
/// package means a new tree.
fn tarball_key() -> Result<String> {
    let meta = fs::metadata(TARBALL)
        .with_context(|| format!("cannot read {TARBALL} (package linux-source-6.1)"))?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_secs();
    Ok(format!("{TARBALL} {} {mtime}\n", meta.len()))
}

/// Unpacks the tarball next to the tree and renames it into place, so an
/// interrupted unpack never looks done.
fn unpack(ctx: &Ctx, paths: &Paths) -> Result<()> {
    let key = tarball_key()?;
    let stamp = ctx.state().join("kernel-source");
    if paths.src().join("Makefile").is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&*key) {
        Step::skip("unpack linux-source-6.1", "unpacked from this tarball");
        return Ok(());
    }
    let step = Step::start(&format!("unpack {TARBALL}"));
    fs::remove_file(&stamp).ok();
    // A new tree keeps its files' dates from the tarball, older than the
    // objects built from the last one: kbuild would not see the change.
    let scratch = paths.dir.join("unpack.tmp");
    for old in [&scratch, &paths.src(), &paths.out()] {
        if old.exists() {
            fs::remove_dir_all(old)?;
        }
    }
    fs::create_dir_all(&scratch)?;
    cmd::run(Command::new("tar").args(["--no-same-owner", "-xf", TARBALL, "-C"]).arg(&scratch))?;
    fs::rename(scratch.join(TREE), paths.src())
        .with_context(|| format!("{TARBALL} did not unpack to {TREE}/"))?;
    fs::remove_dir_all(&scratch)?;
    fs::create_dir_all(ctx.state())?;
    fs::write(&stamp, key)?;
    step.done();
    Ok(())
}

/// `make` for this tree, with every variable the recipe in docs/KERNEL.md
/// names: the suffixed LLVM tools, the toolchain's rustc by path (6.1's
/// `rust_is_available.sh` runs `command -v "$RUSTC"`, so `rustc +pfe` is
/// "not found" and `CONFIG_RUST` silently goes), bindgen, the extra flags.
fn make(paths: &Paths, tc: &Toolchain) -> Command {
    let mut make = Command::new("make");
    clean(&mut make);
    make.arg("-C").arg(paths.src()).arg(format!("O={}", paths.out().display()));
    make.arg("LLVM=-14");
    make.arg(format!("RUSTC={}", tc.rustc.display()));
    // Host programs (`scripts/generate_rust_target`) too: every Rust compiler
    // the build runs is the toolchain's, whatever `rustc` on PATH is.
    make.arg(format!("HOSTRUSTC={}", tc.rustc.display()));
    if let Some(rustdoc) = &tc.rustdoc {
        make.arg(format!("RUSTDOC={}", rustdoc.display()));
    }
    make.arg(format!("BINDGEN={}", paths.bindgen().display()));
    if let Some(lib) = &tc.lib_src {
        make.arg(format!("RUST_LIB_SRC={}", lib.display()));
    }
    make.arg(format!("KRUSTFLAGS={RUST_FLAGS}"));
    make
}

/// The symbols of the fragment with the value each must have in `.config`
/// (`n` for `# CONFIG_X is not set`).
fn wanted() -> Vec<(&'static str, &'static str)> {
    FRAGMENT
        .lines()
        .filter_map(|l| {
            if let Some(name) = l.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set")) {
                Some((name, "n"))
            } else {
                l.split_once('=')
            }
        })
        .collect()
}

/// What `.config` says of `name`: its value, `n` when unset or absent.
fn config_value<'a>(config: &'a str, name: &str) -> &'a str {
    for line in config.lines() {
        if let Some(value) = line.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return value;
        }
    }
    "n"
}

/// tinyconfig, the fragment merged in with the kernel's own
/// `merge_config.sh`, `olddefconfig`; then every symbol of the fragment
/// checked, `CONFIG_RUST=y` above all (kconfig drops it without a word when
/// `rust_is_available.sh` fails, so `make rustavailable` runs first).
fn configure(ctx: &Ctx, paths: &Paths, tc: &Toolchain) -> Result<()> {
    let out = paths.out();
    let config = out.join(".config");
    let key = format!("{}{FRAGMENT}{}", tarball_key()?, tc.key);
    let stamp = ctx.state().join("kernel-config");
    if config.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&*key) {
        Step::skip("configure the kernel", "configured with this tree, fragment and toolchain");
        return Ok(());
    }
    let step = Step::start("configure the kernel (tinyconfig + 64BIT, serial console, RUST, the Rust sample)");
    fs::remove_file(&stamp).ok();
    fs::create_dir_all(&out)?;
    let logs = ctx.logs().join("kernel-config");
    println!("    logs: {}/", logs.display());
    let log = logs.join("rustavailable.log");
    cmd::run_logged(make(paths, tc).arg("rustavailable"), "make rustavailable", &log, None)?;
    let said = fs::read_to_string(&log).unwrap_or_default();
    if !said.contains("Rust is available!") {
        bail!("`make rustavailable` did not say \"Rust is available!\"; the end of {}:\n{}", log.display(), cmd::tail(&said, 20));
    }
    for line in said.lines().filter(|l| l.starts_with("***") && l.trim() != "***") {
        println!("    rustavailable: {}", line.trim_start_matches('*').trim());
    }
    let fragment = out.join("rustc-pfe.config");
    write_if_changed(&fragment, FRAGMENT.as_bytes())?;
    cmd::run_logged(make(paths, tc).arg("tinyconfig"), "make tinyconfig", &logs.join("tinyconfig.log"), None)?;
    cmd::run_logged(
        clean(&mut Command::new(paths.src().join("scripts/kconfig/merge_config.sh")))
            .args(["-m", "-O"])
            .arg(&out)
            .arg(&config)
            .arg(&fragment)
            .current_dir(paths.src()),
        "merge_config.sh",
        &logs.join("merge_config.log"),
        None,
    )?;
    cmd::run_logged(make(paths, tc).arg("olddefconfig"), "make olddefconfig", &logs.join("olddefconfig.log"), None)?;
    let text = fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    if config_value(&text, "CONFIG_RUST") != "y" {
        bail!(
            "CONFIG_RUST is not set in {}: kconfig dropped it (its `depends on` or \
             RUST_IS_AVAILABLE failed); `make rustavailable` said:\n{}",
            config.display(),
            cmd::tail(&said, 20)
        );
    }
    let missing: Vec<String> = wanted()
        .into_iter()
        .filter(|(name, value)| config_value(&text, name) != *value)
        .map(|(name, value)| format!("{name}={value} (is {})", config_value(&text, name)))
        .collect();
    if !missing.is_empty() {
        bail!("{} does not have what the fragment asks: {}", config.display(), missing.join(", "));
    }
    fs::write(&stamp, key)?;
    step.done();
    Ok(())
}

/// `make -jN` (vmlinux and bzImage), every time: kbuild is the judge of
/// what is current (it rebuilds an object whose command line changed, so a
/// build directory made with other flags is put right), and a no-op make
/// takes a few seconds. kbuild does not track the compiler binary, though:
/// a new toolchain removes the Rust objects' directories first. Returns the
/// build's time, or None when kbuild had nothing to do.
fn compile(ctx: &Ctx, paths: &Paths, tc: &Toolchain, args: &Args) -> Result<Option<Duration>> {
    let image = paths.out().join("arch/x86/boot/bzImage");
    let step = Step::start(&format!("build the kernel (make -j{}, KRUSTFLAGS=\"{RUST_FLAGS}\")", args.jobs));
    // The compiler the Rust objects in the build directory were made with
    // (written before make runs, so an interrupted build keeps its objects).
    let compiler = ctx.state().join("kernel-compiler");
    if fs::read_to_string(&compiler).ok().as_deref() != Some(&*tc.key) {
        for dir in ["rust", "samples/rust"] {
            let dir = paths.out().join(dir);
            if dir.exists() {
                println!("    a new toolchain: removing {} for kbuild to rebuild it", dir.display());
                fs::remove_dir_all(&dir)?;
            }
        }
        fs::write(&compiler, &tc.key)?;
    }
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let before = modified(&image);
    let log = ctx.logs().join("kernel-build.log");
    println!("    log: {}", log.display());
    let started = Instant::now();
    cmd::run_logged(make(paths, tc).arg(format!("-j{}", args.jobs)), "make", &log, None)?;
    let time = started.elapsed();
    let after = modified(&image);
    if after.is_none() {
        bail!("make succeeded but left no {}", image.display());
    }
    step.done();
    if before == after {
        println!("    kbuild found everything current");
        return Ok(None);
    }
    record_time(ctx, &format!("kernel-build -j{}", args.jobs), started)?;
    Ok(Some(time))
}

struct Audit {
    objects: usize,
    functions: usize,
    /// How alignment was checked, for the summary.
    aligned: String,
}

/// The objects of `dir` that rustc built: kbuild's `.NAME.o.cmd` says which
/// compiler made each (`rust/` also holds C objects: helpers, exports).
fn rustc_objects(dir: &Path, rustc: &Path) -> Result<Vec<PathBuf>> {
    let mut objects = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return Ok(objects) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".o") {
            continue;
        }
        let cmd_file = dir.join(format!(".{name}.cmd"));
        let text = fs::read_to_string(&cmd_file).unwrap_or_default();
        let first = text.lines().next().unwrap_or("");
        if first.contains(&*rustc.to_string_lossy()) {
            objects.push(entry.path());
        }
    }
    objects.sort();
    Ok(objects)
}

/// Every rustc-built object of the kernel (`rust/*.o`, `samples/rust/*.o`)
/// through the toolchain's `pfe-check --expect 16,16`: every function 16
/// nops before its symbol, none after, one record at the pad, and with
/// `--align 16` every patch site 16-aligned.
fn audit(ctx: &Ctx, paths: &Paths, tc: &Toolchain) -> Result<Audit> {
    let step = Step::start(&format!("audit the rustc-built objects (pfe-check --expect {EXPECT})"));
    let mut objects = Vec::new();
    for dir in ["rust", "samples/rust"] {
        objects.extend(rustc_objects(&paths.out().join(dir), &tc.rustc)?);
    }
    if !objects.iter().any(|o| o.ends_with("samples/rust/rust_minimal.o")) {
        bail!("no rustc-built samples/rust/rust_minimal.o in {}", paths.out().display());
    }
    let help = cmd::output(Command::new(&tc.pfe_check).arg("--help"))?;
    if !help.contains("--align") {
        bail!("{} has no --align: run `./x build`, which installs this checkout's pfe-check", tc.pfe_check.display());
    }
    let mut check = Command::new(&tc.pfe_check);
    check.args(["--expect", EXPECT, "--align", &ALIGN.to_string()]);
    check.args(&objects);
    let out = check.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", cmd::show(&check)))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = ctx.logs().join("kernel-pfe-check.log");
    fs::write(&log, format!("$ {}\n{text}{}", cmd::show(&check), String::from_utf8_lossy(&out.stderr)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}); the end of {}:\n{}",
            cmd::show(&check),
            out.status,
            log.display(),
            cmd::tail(&format!("{text}{}", String::from_utf8_lossy(&out.stderr)), 40)
        );
    }
    let (counted, functions) = summary_counts(&text)?;
    if counted != objects.len() {
        bail!("pfe-check reported {counted} objects of {}; its output is in {}", objects.len(), log.display());
    }
    let aligned = format!("patch sites {ALIGN}-aligned (pfe-check --align {ALIGN})");
    for object in &objects {
        println!("    {}", object.strip_prefix(paths.out()).unwrap_or(object).display());
    }
    println!("    {functions} functions in {} objects: --expect {EXPECT} met; {aligned}", objects.len());
    step.done();
    Ok(Audit { objects: objects.len(), functions, aligned })
}

/// (objects, functions) from pfe-check's summary lines, one per object:
/// `PATH (KIND ARCH): N functions, ...`.
fn summary_counts(text: &str) -> Result<(usize, usize)> {
    let mut objects = 0;
    let mut functions = 0;
    for line in text.lines().filter(|l| !l.starts_with(' ')) {
        let Some(rest) = line.rsplit_once("): ").map(|(_, r)| r) else { continue };
        let Some(n) = rest.split_once(" functions, ").map(|(n, _)| n) else { continue };
        functions += n.trim().parse::<usize>().with_context(|| format!("pfe-check said `{line}`"))?;
        objects += 1;
    }
    Ok((objects, functions))
}


/// Boots bzImage under qemu (TCG, serial console on stdout) until the
/// sample's line is on the console, then stops qemu. Returns the time from
/// starting qemu to the line.
fn boot(ctx: &Ctx, paths: &Paths, args: &Args) -> Result<Duration> {
    let step = Step::start("boot under qemu-system-x86_64 (TCG) until the Rust sample prints");
    let image = paths.out().join("arch/x86/boot/bzImage");
    let log = ctx.logs().join("kernel-boot.log");
    println!("    console: {}", log.display());
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot"])
        .args(["-append", "console=ttyS0 panic=-1", "-kernel"])
        .arg(&image);
    let started = Instant::now();
    let mut child = cmd::spawn_logged(&mut qemu, &log)?;
    let timeout = Duration::from_secs(args.boot_timeout);
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(100));
        let text = fs::read(&log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if text.contains(SAMPLE_LINE) {
            break Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            break Err(format!("qemu exited ({status}) before the sample printed"));
        }
        if started.elapsed() > timeout {
            break Err(format!("no sample line after {}s (--boot-timeout)", args.boot_timeout));
        }
    };
    // qemu is ours: stop it by its own handle, whatever happened.
    child.kill().ok();
    child.wait().ok();
    let text = fs::read(&log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    match outcome {
        Ok(time) => {
            for line in text.lines().filter(|l| l.contains("rust_minimal:")) {
                println!("    console: {}", line.trim_end());
            }
            println!("    the sample printed {:.1}s after qemu started; qemu stopped", time.as_secs_f64());
            record_time(ctx, "kernel-boot", started)?;
            step.done();
            Ok(time)
        }
        Err(why) => bail!("`{}`: {why}; the end of {}:\n{}", cmd::show(&qemu), log.display(), cmd::tail(&text, 30)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_asks_for_rust_and_the_sample_built_in_without_werror() {
        let wanted = wanted();
        for (name, value) in [
            ("CONFIG_64BIT", "y"),
            ("CONFIG_RUST", "y"),
            ("CONFIG_SAMPLE_RUST_MINIMAL", "y"),
            ("CONFIG_SERIAL_8250_CONSOLE", "y"),
            ("CONFIG_WERROR", "n"),
        ] {
            assert!(wanted.contains(&(name, value)), "{name}={value} not in the fragment");
        }
        let config = "CONFIG_RUST_IS_AVAILABLE=y\n# CONFIG_WERROR is not set\nCONFIG_RUST=y\n";
        assert_eq!(config_value(config, "CONFIG_RUST"), "y");
        assert_eq!(config_value(config, "CONFIG_WERROR"), "n");
        assert_eq!(config_value(config, "CONFIG_SAMPLES"), "n");
        assert_eq!(config_value("CONFIG_RUST_IS_AVAILABLE=y\n", "CONFIG_RUST"), "n");
    }

    #[test]
    fn counts_come_from_the_summary_lines() {
        let text = "rust/core.o (relocatable X86_64): 2051 functions, 2051 with a record; 2051 records in 1 sections (flags awo), 0 orphans\n  \
                    --expect 16,16: 2051/2051 functions match\n\
                    samples/rust/rust_minimal.o (relocatable x86_64): 4 functions, 4 with a record; 4 records in 1 sections (flags awo), 0 orphans\n  \
                    --expect 16,16: 4/4 functions match\n";
        assert_eq!(summary_counts(text).unwrap(), (2, 2055));
        assert_eq!(summary_counts("  offender: f: 0 before\n").unwrap(), (0, 0));
    }
}
