//! `./x kernel [--arch x86_64|arm64|riscv64]`: the patched toolchain on its
//! first real user, Debian 12's Linux 6.1 (`linux-source-6.1`), patched with
//! the project's own kernel series (`kernel/patches/`), built small with
//! `CONFIG_RUST`, every rustc-built object audited with the toolchain's
//! `pfe-check`, and booted under qemu (TCG).
//!
//! - x86_64 (the default): the x86 call-padding shape (`=16,16`, functions
//!   16-aligned) through `KRUSTFLAGS`, booted until the Rust sample prints
//!   (6.1's x86 ftrace does not use those pads); then, with the kernel
//!   series' x86 part, Rust with ftrace's 5-byte entry (`=5`, what C's
//!   `__fentry__` site becomes) and `CONFIG_LIVEPATCH`, and its control
//!   without the entry: ftrace and the kernel's livepatch on Rust
//!   functions, and ORC counted for every Rust function in `vmlinux`; then
//!   the same with IBT (`endbr64` before the entry, no jump tables), where
//!   objtool reads `vmlinux.o` and must name no Rust symbol, and its
//!   control with Rust jump tables, where it must.
//! - arm64 and riscv64: ftrace patches function entries there, and the
//!   kernel series gives Rust code the padding C gets. Each is built three
//!   ways (arm64) or two (riscv64): with the padding; as a control without
//!   it (`KRUSTFLAGS=-Zpatchable-function-entry=0`); on arm64 also with BTI
//!   and pointer authentication, booted on `-cpu max`.
//!
//! The ftrace kernels boot with the project's init (`kernel/init.c`), which
//! lists, traces and redirects Rust functions through ftrace (and on x86_64
//! live-patches them); the console is then checked line by line against
//! the records in the Rust objects (`check_ftrace`).
//!
//! It uses the toolchain `./x build` left in the cache and never builds one.
//! The kernel tree is unpacked and patched once per tarball and series, and
//! never edited otherwise: each build goes to its own directory (`make O=`).
//! Not part of `./x test` (docs/KERNEL.md has the measured times); the
//! cheap parts are: the series applies, the console checks.
//!
//! One file per concern: `arch.rs` (the architectures and their kernels, as
//! data), `toolchain.rs` (the compiler and bindgen kbuild is given by path),
//! `tree.rs` (the tree unpacked and patched), `config.rs`, `make.rs`,
//! `audit.rs` (`pfe-check` on the Rust objects), `orc.rs` (x86's unwind
//! tables for the Rust functions), `objtool.rs` (what objtool said of
//! Rust code in make's log, with IBT), `boot.rs` (qemu) and
//! `console.rs` (the ftrace boots' console checks); this file runs them in
//! order and prints the summary.

mod arch;
mod audit;
mod boot;
mod config;
mod console;
mod make;
mod objtool;
mod orc;
mod toolchain;
mod tree;

pub use arch::Arch;
#[cfg(any(test, feature = "bench"))]
pub use tree::series_applies;

use crate::cmd;
use crate::deps;
use crate::paths::Ctx;
use anyhow::Result;
use arch::{ArchData, Boot, Variant, ARCHES};
use audit::{audit, Audit};
use boot::{boot_ftrace, boot_sample, build_init};
use config::configure;
use make::compile;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use toolchain::{bindgen, toolchain, BINDGEN_VERSION};
use tree::{unpack, TREE};

pub struct Args {
    /// Parallel jobs for the kernel build (`make -jN`, `--jobs N`).
    pub jobs: usize,
    /// Seconds a boot may take before it counts as hung.
    pub boot_timeout: u64,
    pub arch: Arch,
}

impl Default for Args {
    fn default() -> Self {
        Args { jobs: 2, boot_timeout: 300, arch: Arch::X86_64 }
    }
}

/// What the Rust minimal sample prints first (`pr_info!` with its module's
/// name as the prefix).
const SAMPLE_LINE: &str = "rust_minimal: Rust minimal sample (init)";
/// The sample's other lines: the rest of its init, and its `Drop`.
const SAMPLE_LINES: &[&str] = &[
    SAMPLE_LINE,
    "rust_minimal: Am I built-in? false",
    "rust_minimal: My numbers are [72, 108, 200]",
    "rust_minimal: Rust minimal sample (exit)",
];
/// The test's Rust function marked notrace (`kernel/patches`, last patch).
const NOTRACE: &str = "rust_ftrace_notrace";

/// What every kernel build and boot needs beyond `./x build`'s packages: the
/// source, kbuild's tools, clang/lld/llvm 14 (`LLVM=-14`), libclang for
/// bindgen, `xz` for compressed images, `patch` for the kernel series.
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
    "patch",
];

/// Where everything lives: `$RUSTC_PFE_HOME/kernel/`.
struct Paths {
    dir: PathBuf,
}

impl Paths {
    fn src(&self) -> PathBuf {
        self.dir.join(TREE)
    }
    /// kbuild's output directory (`make O=`) of one kernel.
    fn out(&self, arch: &ArchData, variant: &Variant) -> PathBuf {
        self.dir.join(format!("build-{}-{}", arch.name, variant.name))
    }
    fn bindgen(&self) -> PathBuf {
        self.dir.join(format!("bindgen-{BINDGEN_VERSION}")).join("bin/bindgen")
    }
    fn init(&self, arch: &ArchData) -> PathBuf {
        self.dir.join(format!("init-{}", arch.name))
    }
}

/// One kernel's results, for the summary.
struct Outcome {
    name: String,
    build: Option<Duration>,
    audit: Audit,
    boot: Duration,
    evidence: Vec<String>,
}

/// The Debian packages `./x kernel` needs for `arches`.
fn packages<'a>(arches: impl IntoIterator<Item = &'a ArchData>) -> Vec<&'static str> {
    let mut packages = PACKAGES.to_vec();
    for arch in arches {
        packages.extend(arch.packages.iter().filter(|p| !packages.contains(p)).collect::<Vec<_>>());
    }
    packages
}

/// Every Debian package `./x kernel` needs, for every architecture (what
/// `./x deps` installs besides the build's).
pub fn all_packages() -> Vec<&'static str> {
    packages(ARCHES)
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    let arch = args.arch.data();
    let tc = toolchain(ctx)?;
    deps::install("install the kernel's Debian packages", &packages([arch]))?;
    let paths = Paths { dir: ctx.cache.join("kernel") };
    fs::create_dir_all(&paths.dir)?;
    bindgen(ctx, &paths)?;
    unpack(ctx, &paths)?;
    build_init(ctx, &paths, arch)?;
    let mut outcomes = Vec::new();
    for variant in arch.variants {
        println!("=== {} {}: {}", arch.name, variant.name, variant.what);
        configure(ctx, &paths, &tc, arch, variant)?;
        let build = compile(ctx, &paths, &tc, arch, variant, args)?;
        let audit = audit(ctx, &paths, &tc, arch, variant)?;
        let (boot, evidence) = match variant.boot {
            Boot::Sample => (boot_sample(ctx, &paths, arch, variant, args)?, Vec::new()),
            Boot::Ftrace { .. } => boot_ftrace(ctx, &paths, arch, variant, args, &audit)?,
        };
        outcomes.push(Outcome { name: format!("{} {}", arch.name, variant.name), build, audit, boot, evidence });
    }
    println!("./x kernel --arch {}: done in {}", arch.name, cmd::elapsed(started.elapsed()));
    for o in &outcomes {
        println!("  {}:", o.name);
        match o.build {
            Some(time) => println!("    build (make -j{}): {}", args.jobs, cmd::elapsed(time)),
            None => println!("    build: current (kbuild had nothing to do)"),
        }
        println!("    audit: {} functions in {} rustc-built objects, {}", o.audit.functions, o.audit.objects, o.audit.summary);
        println!("    boot (qemu TCG): {:.1}s", o.boot.as_secs_f64());
        for line in &o.evidence {
            println!("    {line}");
        }
    }
    Ok(())
}
