//! kbuild's `make` for one kernel: the command line every step uses, and
//! the build itself.

use super::arch::{ArchData, Variant};
use super::objtool;
use super::toolchain::Toolchain;
use super::{Args, Paths};
use crate::build::record_time;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Result};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `make` for one kernel, with every variable the recipe in docs/KERNEL.md
/// names: the arch, the suffixed LLVM tools, the toolchain's rustc by path
/// (6.1's `rust_is_available.sh` runs `command -v "$RUSTC"`, so
/// `rustc +pfe` is "not found" and `CONFIG_RUST` silently goes), bindgen,
/// the extra flags.
pub fn make(paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Command {
    let mut make = Command::new("make");
    cmd::as_user(&mut make);
    make.arg("-C").arg(paths.src()).arg(format!("O={}", paths.out(arch, variant).display()));
    make.arg(format!("ARCH={}", arch.kbuild));
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
    make.arg(format!("KRUSTFLAGS={}", variant.krustflags));
    make.args(variant.make_vars);
    make
}

/// `make -jN` (vmlinux, the image, modules), every time: kbuild is the judge
/// of what is current (it rebuilds an object whose command line changed, so
/// a build directory made with other flags is put right), and a no-op make
/// takes seconds. kbuild does not track the compiler binary, though: a new
/// toolchain removes the Rust objects' directories first. Returns the
/// build's time, or None when kbuild had nothing to do.
pub fn compile(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant, args: &Args) -> Result<Option<Duration>> {
    let out = paths.out(arch, variant);
    let image = out.join(arch.image);
    let flags = if variant.krustflags.is_empty() { "none".to_string() } else { format!("\"{}\"", variant.krustflags) };
    let step = Step::start(&format!("build the kernel (make -j{}, KRUSTFLAGS {flags})", args.jobs));
    // The compiler the Rust objects in the build directory were made with
    // (written before make runs, so an interrupted build keeps its objects).
    let compiler = ctx.state().join(format!("kernel-compiler-{}-{}", arch.name, variant.name));
    if fs::read_to_string(&compiler).ok().as_deref() != Some(&*tc.key) {
        for dir in ["rust", "samples/rust"] {
            let dir = out.join(dir);
            if dir.exists() {
                println!("    a new toolchain: removing {} for kbuild to rebuild it", dir.display());
                fs::remove_dir_all(&dir)?;
            }
        }
        fs::write(&compiler, &tc.key)?;
    }
    // Where objtool reads vmlinux.o (IBT), its output on it must be known.
    let config = fs::read_to_string(out.join(".config")).unwrap_or_default();
    let objtool = objtool::reads_vmlinux_o(&config);
    if objtool {
        objtool::before_make(ctx, paths, arch, variant)?;
    }
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let before = modified(&image);
    let log = ctx.logs().join(format!("kernel-build-{}-{}.log", arch.name, variant.name));
    println!("    log: {}", log.display());
    let started = Instant::now();
    cmd::run_logged(make(paths, tc, arch, variant).arg(format!("-j{}", args.jobs)), "make", &log, None)?;
    let time = started.elapsed();
    if objtool {
        objtool::after_make(ctx, paths, arch, variant, &log)?;
    }
    let after = modified(&image);
    if after.is_none() {
        bail!("make succeeded but left no {}", image.display());
    }
    step.done();
    if before == after {
        println!("    kbuild found everything current");
        return Ok(None);
    }
    record_time(ctx, &format!("kernel-build-{}-{} -j{}", arch.name, variant.name, args.jobs), started)?;
    Ok(Some(time))
}
