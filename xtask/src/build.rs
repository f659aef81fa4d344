//! `./x build`: every step from the Debian packages to the linked rustup
//! toolchain `pfe`, each skipping itself when its output is current.

use crate::apply;
use crate::cmd::{self, Progress, Step};
use crate::deps;
use crate::fetch;
use crate::paths::{Ctx, CROSS, HOST, TOOLCHAIN};
use crate::prepare;
use crate::series::write_if_changed;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[derive(Default)]
pub struct Args {
    /// Throw away uncommitted changes and unexported commits in the cached tree.
    pub discard: bool,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    deps::run(ctx)?;
    fetch::run(ctx)?;
    prepare::run(ctx)?;
    apply::run(ctx, &apply::Args { discard: args.discard })?;
    configure(ctx)?;
    compile(ctx)?;
    link(ctx)?;
    pfe_check(ctx)?;
    record_time(ctx, "build", started)?;
    println!("./x build: done in {}", cmd::elapsed(started.elapsed()));
    Ok(())
}

/// Step 5: bootstrap's `config.toml`, from the checked-in example.
fn configure(ctx: &Ctx) -> Result<()> {
    let example = ctx.root.join("config.example.toml");
    let text = fs::read(&example).with_context(|| format!("cannot read {}", example.display()))?;
    write_if_changed(&ctx.src().join("config.toml"), &text)
}

/// `python3 x.py` in the cached tree, in the user's environment minus what
/// `./x`, `cargo run` and rustup set for the driver itself:
/// - `CARGO_TARGET_DIR` (the driver's per-clone directory) and
///   `LD_LIBRARY_PATH` (which cargo and rustup extend with the driver's and
///   its toolchain's directories): `rustc_llvm`'s build script tracks both
///   (the path through bootstrap's `REAL_LIBRARY_PATH`), so with them every
///   clone at a new path would rebuild the compiler from `rustc_llvm` up;
/// - `CARGO`, `CARGO_MANIFEST_DIR`, `CARGO_MANIFEST_PATH`, `CARGO_PKG_*`,
///   `CARGO_CRATE_NAME`, `CARGO_BIN_NAME`, `CARGO_PRIMARY_PACKAGE`: the
///   driver's package and the newer cargo that built it, not bootstrap's
///   (its config.toml names Debian's cargo 1.65 and rustc 1.63);
/// - `RUSTC`, `RUSTC_WRAPPER`, `RUSTC_WORKSPACE_WRAPPER`, `RUSTDOC`: the
///   compiler (and wrappers) the driver was built with; bootstrap runs its
///   configured stage0 rustc and then its own compilers through its shims;
/// - `RUSTUP_TOOLCHAIN`, `RUSTUP_TOOLCHAIN_SOURCE`, `RUST_RECURSION_COUNT`:
///   rustup's pin on the driver's toolchain, which would redirect every
///   `cargo` or `rustc` proxy a build step runs;
/// - `RUSTC_PFE_ROOT`, the driver's own.
///
/// Everything else passes, `CARGO_HOME` and cargo's other settings
/// included. `CARGO_BUILD_JOBS` also becomes `x.py -j`: bootstrap gives every
/// cargo it runs `-j` (every core unless told), which overrides the variable.
pub fn xpy(ctx: &Ctx) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("x.py").current_dir(ctx.src());
    for (key, _) in std::env::vars_os() {
        if not_for_bootstrap(&key.to_string_lossy()) {
            cmd.env_remove(&key);
        }
    }
    if let Some(jobs) = std::env::var("CARGO_BUILD_JOBS").ok().and_then(|j| j.trim().parse::<u32>().ok()) {
        if jobs > 0 {
            cmd.args(["-j", &jobs.to_string()]);
        }
    }
    cmd
}

/// Whether `xpy` keeps the variable `name` from bootstrap (see there why).
fn not_for_bootstrap(name: &str) -> bool {
    const REMOVED: &[&str] = &[
        "CARGO_TARGET_DIR",
        "LD_LIBRARY_PATH",
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "RUSTUP_TOOLCHAIN_SOURCE",
        "RUST_RECURSION_COUNT",
        "RUSTC_PFE_ROOT",
    ];
    REMOVED.contains(&name) || name.starts_with("CARGO_PKG_")
}

/// What the last successful compile was of: the tree's HEAD and the config.
fn build_key(ctx: &Ctx) -> Result<String> {
    let head = apply::head(&ctx.src())?;
    let config = fetch::sha256(&ctx.src().join("config.toml"))?;
    Ok(format!("head {head}\nconfig {config}\n"))
}

/// Whether the sysroot `root` has std for `target`.
pub fn std_present(root: &Path, target: &str) -> bool {
    let dir = root.join("lib/rustlib").join(target).join("lib");
    fs::read_dir(dir)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        .unwrap_or(false)
}

/// Step 6: the stage1 compiler, rustdoc (`cargo test` runs doc examples with
/// it, `cargo doc` and the kernel's `make rustdoc` need it) and std for the
/// host and aarch64, in one `x.py build` (built alone after a compiler
/// change, one target's std empties the other's stage1 sysroot).
fn compile(ctx: &Ctx) -> Result<()> {
    let key = build_key(ctx)?;
    let stamp = ctx.state().join("built");
    let complete = ctx.toolchain().join("bin/rustc").is_file()
        && ctx.toolchain().join("bin/rustdoc").is_file()
        && std_present(&ctx.toolchain(), HOST)
        && std_present(&ctx.toolchain(), CROSS);
    if complete && fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str()) {
        Step::skip("build stage1 (compiler, rustdoc, std for x86_64 and aarch64)", "built from this tree");
        return Ok(());
    }
    fs::remove_file(&stamp).ok();
    let step = Step::start("build stage1 (compiler, rustdoc, std for x86_64 and aarch64)");
    let crates_file = ctx.state().join("build-crates");
    let total = fs::read_to_string(&crates_file).ok().and_then(|t| t.trim().parse().ok());
    let log = ctx.logs().join("build.log");
    println!("    log: {}", log.display());
    let started = Instant::now();
    let compiled = cmd::run_logged(
        xpy(ctx)
            .args(["build", "--stage", "1", "--target"])
            .arg(format!("{HOST},{CROSS}"))
            .args(["library/std", "src/tools/rustdoc"]),
        "x.py build",
        &log,
        Some(Progress { counts: |l| l.trim_start().starts_with("Compiling "), total, unit: "crates" }),
    )?;
    snapshot(ctx)?;
    fs::create_dir_all(ctx.state())?;
    // A cold build's count is the bar's total for the next ones.
    if total.map_or(true, |t| compiled > t) {
        fs::write(&crates_file, format!("{compiled}\n"))?;
    }
    fs::write(&stamp, key)?;
    record_time(ctx, &format!("compile {compiled}"), started)?;
    println!("    {compiled} crates compiled");
    step.done();
    Ok(())
}

/// The toolchain is a hard-linked snapshot of stage1 taken right after the
/// build: every later `x.py` run (compiletest included) reassembles the
/// stage1 sysroot with only the targets it was asked for, which would empty
/// the aarch64 std out of a toolchain that pointed into it.
fn snapshot(ctx: &Ctx) -> Result<()> {
    for target in [HOST, CROSS] {
        if !std_present(&ctx.stage1(), target) {
            bail!("the build left no std for {target} in {}", ctx.stage1().display());
        }
    }
    let dir = ctx.toolchain();
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    for old in [bin.join("rustc"), bin.join("rustdoc"), dir.join("lib")] {
        match fs::symlink_metadata(&old) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&old)?,
            Ok(_) => fs::remove_file(&old)?,
            Err(_) => {}
        }
    }
    cmd::run(Command::new("cp").arg("-al").arg(ctx.stage1().join("lib")).arg(dir.join("lib")))?;
    cmd::run(Command::new("cp").arg("-al").arg(ctx.stage1_rustc()).arg(bin.join("rustc")))?;
    let rustdoc = ctx.stage1().join("bin/rustdoc");
    if !rustdoc.is_file() {
        bail!("the build left no rustdoc at {}", rustdoc.display());
    }
    cmd::run(Command::new("cp").arg("-al").arg(&rustdoc).arg(bin.join("rustdoc")))?;
    Ok(())
}

/// Step 7: the toolchain directory (the stage1 snapshot plus a cargo of the
/// same era) linked as the rustup toolchain `pfe`.
fn link(ctx: &Ctx) -> Result<()> {
    let dir = ctx.toolchain();
    let bin = dir.join("bin");
    let cargo = cargo_wrapper("$(dirname \"$(readlink -f \"$0\")\")");
    write_if_changed(&bin.join("cargo"), cargo.as_bytes())?;
    set_executable(&bin.join("cargo"))?;
    if deps::which("rustup").is_none() {
        println!("==> link the toolchain: rustup not found; use {} directly", bin.display());
        return Ok(());
    }
    let list = cmd::output(Command::new("rustup").args(["toolchain", "list", "-v"]))?;
    let linked = list.lines().any(|l| {
        l.starts_with(TOOLCHAIN) && l.split_whitespace().last() == Some(&*dir.to_string_lossy())
    });
    if linked {
        Step::skip("link the rustup toolchain `pfe`", "linked");
        return Ok(());
    }
    let step = Step::start("link the rustup toolchain `pfe`");
    cmd::output(Command::new("rustup").args(["toolchain", "link", TOOLCHAIN]).arg(&dir))?;
    step.done();
    Ok(())
}

/// The toolchain's `cargo`: a shell script that runs Debian's cargo 1.65
/// with the rustc and rustdoc in `bin` (a shell word: a path, or an
/// expression such as the toolchain's own directory). Debian's cargo 1.65
/// fits rustc 1.63 (a newer cargo asks it for options it does not have); its
/// sparse registry support is unstable (the README says what the channel
/// override unlocks). RUSTDOC too: cargo otherwise runs the first `rustdoc`
/// in PATH (rustup's proxy for its default toolchain) on rlibs of this
/// rustc. `./x deb` installs the same script as `cargo-pfe`.
pub fn cargo_wrapper(bin: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # cargo for the pfe toolchain: Debian's cargo 1.65 with the sparse registry.\n\
         : \"${{RUSTC:={bin}/rustc}}\"\n\
         : \"${{RUSTDOC:={bin}/rustdoc}}\"\n\
         export RUSTC RUSTDOC\n\
         export CARGO_UNSTABLE_SPARSE_REGISTRY=true\n\
         export CARGO_REGISTRIES_CRATES_IO_PROTOCOL=sparse\n\
         export __CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=nightly\n\
         exec /usr/bin/cargo \"$@\"\n"
    )
}

/// `pfe-check`, built from this checkout and installed next to the
/// toolchain's rustc (`$RUSTC_PFE_HOME/toolchain/bin/pfe-check`).
pub(crate) fn pfe_check(ctx: &Ctx) -> Result<()> {
    let step = Step::start("build pfe-check");
    cmd::output(
        cmd::cargo()
            .args(["build", "--quiet", "--release", "-p", "pfe-check", "--manifest-path"])
            .arg(ctx.root.join("Cargo.toml")),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ctx.root.join("target"));
    let built = fs::read(target.join("release/pfe-check"))?;
    let installed = ctx.toolchain().join("bin/pfe-check");
    write_if_changed(&installed, &built)?;
    set_executable(&installed)?;
    println!("    {}", installed.display());
    step.done();
    Ok(())
}

pub fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Appends `what seconds` to `state/times`, for the README's and the
/// benchmark's figures.
pub fn record_time(ctx: &Ctx, what: &str, started: Instant) -> Result<()> {
    use std::io::Write;
    fs::create_dir_all(ctx.state())?;
    let mut file = fs::OpenOptions::new().create(true).append(true).open(ctx.state().join("times"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    writeln!(file, "{now} {what} {}", started.elapsed().as_secs())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_keeps_the_users_cargo_settings_only() {
        for kept in ["CARGO_HOME", "CARGO_BUILD_JOBS", "CARGO_NET_OFFLINE", "CARGO_REGISTRIES_CRATES_IO_PROTOCOL", "RUSTFLAGS", "RUSTUP_HOME", "PATH"] {
            assert!(!not_for_bootstrap(kept), "{kept} removed");
        }
        for removed in ["CARGO_TARGET_DIR", "CARGO", "CARGO_MANIFEST_DIR", "CARGO_PKG_VERSION_MAJOR", "RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN", "LD_LIBRARY_PATH"] {
            assert!(not_for_bootstrap(removed), "{removed} kept");
        }
    }
}
