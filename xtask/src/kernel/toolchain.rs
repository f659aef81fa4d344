//! What kbuild is given by path: the toolchain `./x build` left in the
//! cache (never built here), and bindgen 0.56.0, installed into the cache.

use super::Paths;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What 6.1 pins: bindgen 0.56.0 (`scripts/min-tool-version.sh`).
pub const BINDGEN_VERSION: &str = "0.56.0";

/// The toolchain `./x build` left: what kbuild is given by path.
pub struct Toolchain {
    pub rustc: PathBuf,
    pub rustdoc: Option<PathBuf>,
    pub pfe_check: PathBuf,
    /// `RUST_LIB_SRC`, when the sysroot has no `lib/rustlib/src/rust`.
    pub lib_src: Option<PathBuf>,
    /// Changes whenever the compiler does (kbuild does not track it).
    pub key: String,
}

/// The toolchain's rustc and pfe-check, or a clear error: this command never
/// builds them. The compiler must know `-Zmin-function-alignment`.
pub fn toolchain(ctx: &Ctx) -> Result<Toolchain> {
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

/// bindgen 0.56.0 (what 6.1 pins), installed with the host's cargo into the
/// cache; it finds libclang 14 at run time.
pub fn bindgen(ctx: &Ctx, paths: &Paths) -> Result<()> {
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
        cmd::as_user(&mut Command::new("cargo"))
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
