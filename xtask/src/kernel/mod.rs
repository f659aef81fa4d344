//! `./x kernel [--arch x86_64|arm64|riscv64]`: the patched toolchain on its
//! first real user, Debian 12's Linux 6.1 (`linux-source-6.1`), patched with
//! the project's own kernel series (`kernel/patches/`), built small with
//! `CONFIG_RUST`, every rustc-built object audited with the toolchain's
//! `pfe-check`, and booted under qemu (TCG).
//!
//! - x86_64 (the default): the x86 call-padding shape (`=16,16`, functions
//!   16-aligned) through `KRUSTFLAGS`, booted until the Rust sample prints.
//!   6.1's x86 ftrace does not use the pads.
//! - arm64 and riscv64: ftrace patches function entries there, and the
//!   kernel series gives Rust code the padding C gets. Each is built three
//!   ways (arm64) or two (riscv64): with the padding; as a control without
//!   it (`KRUSTFLAGS=-Zpatchable-function-entry=0`); on arm64 also with BTI
//!   and pointer authentication, booted on `-cpu max`. Each boots with the
//!   project's init (`kernel/init.c`), which lists, traces and redirects
//!   Rust functions through ftrace; the console is then checked line by
//!   line against the records in the Rust objects (`check_ftrace`).
//!
//! It uses the toolchain `./x build` left in the cache and never builds one.
//! The kernel tree is unpacked and patched once per tarball and series, and
//! never edited otherwise: each build goes to its own directory (`make O=`).
//! Not part of `./x test` (docs/KERNEL.md has the measured times); the
//! cheap parts are: the series applies, the console checks.

use crate::build::record_time;
use crate::cmd::{self, Step};
use crate::deps;
use crate::paths::Ctx;
use crate::series::write_if_changed;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
    Riscv64,
}

impl Arch {
    pub const NAMES: &'static str = "x86_64, arm64, riscv64";

    pub fn parse(name: &str) -> Option<Arch> {
        ARCHES.iter().find(|a| a.name == name).map(|a| a.arch)
    }

    fn data(self) -> &'static ArchData {
        ARCHES.iter().find(|a| a.arch == self).expect("every Arch has its data")
    }
}

/// Debian 12's kernel source: the first kernel with Rust (x86_64 only).
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The directory the tarball unpacks to.
const TREE: &str = "linux-source-6.1";
/// What 6.1 pins: bindgen 0.56.0 (`scripts/min-tool-version.sh`).
const BINDGEN_VERSION: &str = "0.56.0";
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

/// An architecture: everything that differs between them is data here.
struct ArchData {
    arch: Arch,
    /// `--arch`, and the name in directories and logs.
    name: &'static str,
    /// kbuild's `ARCH`.
    kbuild: &'static str,
    /// The image qemu boots, in the build directory.
    image: &'static str,
    qemu: &'static str,
    /// The machine, before `-cpu` (given per variant).
    machine: &'static [&'static str],
    console: &'static str,
    /// Debian packages for qemu and the init's compiler.
    packages: &'static [&'static str],
    /// Config lines of this architecture, after tinyconfig.
    fragment: &'static str,
    /// The init's compiler and flags (no FP registers, as the kernels here
    /// have no FPU support); None where the boot needs no init.
    init_cc: Option<(&'static str, &'static [&'static str])>,
    /// `llvm-objdump-14` options: the extensions to decode by name, and
    /// on RISC-V `c.nop` rather than its alias `nop`.
    objdump: &'static [&'static str],
    variants: &'static [Variant],
}

/// One kernel of an architecture: its config, flags, audit and boot.
struct Variant {
    name: &'static str,
    /// For the step headings.
    what: &'static str,
    fragment: &'static str,
    /// `KRUSTFLAGS`: extra Rust flags, after the kernel's own.
    krustflags: &'static str,
    /// `pfe-check --expect` for every rustc-built object.
    expect: &'static str,
    /// `pfe-check --align`.
    align: Option<u64>,
    /// qemu's `-cpu`.
    cpu: Option<&'static str>,
    boot: Boot,
    /// The first instructions of the test's `rust_ftrace_target` in the
    /// linked `vmlinux` (ftrace boots only): where the pad and the landing
    /// pad are, after the link.
    entry: &'static [&'static str],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Boot {
    /// Until the Rust sample (built in) prints.
    Sample,
    /// The project's init, ftrace on Rust functions; `padded` says whether
    /// the Rust code has the ftrace padding (the control has not).
    Ftrace { padded: bool },
}

/// x86's config: 6.1 builds a 32-bit kernel from tinyconfig unless asked;
/// the console lines are what a serial boot needs to show `pr_info!`.
/// `-Werror` as on the other architectures. tinyconfig is 32-bit and so
/// keeps the 32-bit stack-frame warning limit, 1024, after `64BIT=y`;
/// clang-14 finds `do_sys_poll`'s frame (in C, `fs/select.c`) 1032 bytes,
/// so the limit is set to Kconfig's own default for 64-bit kernels, 2048.
const X86_FRAGMENT: &str = "\
CONFIG_64BIT=y
CONFIG_FRAME_WARN=2048
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_BINFMT_ELF=y
CONFIG_RUST=y
CONFIG_SAMPLES=y
CONFIG_SAMPLES_RUST=y
CONFIG_SAMPLE_RUST_MINIMAL=y
CONFIG_WERROR=y
";

/// What a traced arm64 or riscv64 kernel needs: an initramfs, sysfs (the
/// test's trigger), modules that unload, kallsyms (function names in
/// ftrace), the function and function_graph tracers with dynamic ftrace
/// and saved registers (redirection), Rust with the sample as a module and
/// the kernel series' test built in; `-Werror`, as the series makes 6.1's
/// Rust build warning-free with rustc 1.63.
const FTRACE_FRAGMENT: &str = "\
CONFIG_PRINTK=y
CONFIG_TTY=y
CONFIG_BINFMT_ELF=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_SYSFS=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_KALLSYMS=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=y
CONFIG_FUNCTION_GRAPH_TRACER=y
CONFIG_DYNAMIC_FTRACE=y
CONFIG_DYNAMIC_FTRACE_WITH_REGS=y
CONFIG_RUST=y
CONFIG_SAMPLES=y
CONFIG_SAMPLES_RUST=y
CONFIG_SAMPLE_RUST_MINIMAL=m
CONFIG_SAMPLE_RUST_FTRACE_TEST=y
CONFIG_WERROR=y
";

/// The x86 call-padding shape: 16 nops before each function, none after, the
/// pad (and so the function) 16-aligned, as `CONFIG_CALL_PADDING` kernels
/// (6.2 and later) ask of C with `-fpatchable-function-entry=16,16
/// -falign-functions=16`. 6.1 passes extra Rust flags through `KRUSTFLAGS`
/// (newer trees: `KBUILD_RUSTFLAGS`).
pub const RUST_FLAGS: &str = "-Zpatchable-function-entry=16,16 -Zmin-function-alignment=16";
/// The control kernels: the kernel's own `-Zpatchable-function-entry`
/// (kernel series, patch 4) overridden by a later one asking for none.
const NO_PADDING: &str = "-Zpatchable-function-entry=0";

const ARCHES: &[ArchData] = &[
    ArchData {
        arch: Arch::X86_64,
        name: "x86_64",
        kbuild: "x86",
        image: "arch/x86/boot/bzImage",
        qemu: "qemu-system-x86_64",
        machine: &[],
        console: "ttyS0",
        packages: &["qemu-system-x86"],
        fragment: X86_FRAGMENT,
        init_cc: None,
        objdump: &[],
        variants: &[Variant {
            name: "sample",
            what: "x86 call padding (=16,16, 16-aligned), the Rust sample built in",
            fragment: "",
            krustflags: RUST_FLAGS,
            expect: "16,16",
            align: Some(16),
            cpu: None,
            boot: Boot::Sample,
            entry: &[],
        }],
    },
    ArchData {
        arch: Arch::Arm64,
        name: "arm64",
        kbuild: "arm64",
        image: "arch/arm64/boot/Image",
        qemu: "qemu-system-aarch64",
        machine: &["-M", "virt"],
        console: "ttyAMA0",
        packages: &["qemu-system-arm", "gcc-aarch64-linux-gnu"],
        fragment: "\
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y
",
        init_cc: Some(("aarch64-linux-gnu-gcc", &["-mgeneral-regs-only"])),
        objdump: &["--mattr=+bti,+pauth"],
        variants: &[
            Variant {
                name: "ftrace",
                what: "Rust padded as C (=2), ftrace on Rust functions",
                fragment: "\
# CONFIG_ARM64_PTR_AUTH_KERNEL is not set
# CONFIG_ARM64_BTI_KERNEL is not set
",
                krustflags: "",
                expect: "2",
                align: None,
                cpu: Some("cortex-a57"),
                boot: Boot::Ftrace { padded: true },
                entry: &["nop", "nop", "stp x29, x30, [sp, #-16]!"],
            },
            Variant {
                name: "control",
                what: "the same kernel without the Rust padding (control)",
                fragment: "\
# CONFIG_ARM64_PTR_AUTH_KERNEL is not set
# CONFIG_ARM64_BTI_KERNEL is not set
",
                krustflags: NO_PADDING,
                expect: "0",
                align: None,
                cpu: Some("cortex-a57"),
                boot: Boot::Ftrace { padded: false },
                entry: &["stp x29, x30, [sp, #-16]!"],
            },
            Variant {
                name: "bti",
                what: "with BTI and pointer authentication (bti c, the nops, paciasp), on -cpu max",
                fragment: "\
CONFIG_ARM64_PTR_AUTH=y
CONFIG_ARM64_PTR_AUTH_KERNEL=y
CONFIG_ARM64_BTI=y
CONFIG_ARM64_BTI_KERNEL=y
",
                krustflags: "",
                expect: "2",
                align: None,
                // QEMU's own (IMPLEMENTATION DEFINED) pointer authentication
                // algorithm: the architected QARMA is slow under TCG.
                cpu: Some("max,pauth-impdef=on"),
                boot: Boot::Ftrace { padded: true },
                entry: &["bti c", "nop", "nop", "paciasp", "stp x29, x30, [sp, #-16]!"],
            },
        ],
    },
    ArchData {
        arch: Arch::Riscv64,
        name: "riscv64",
        kbuild: "riscv",
        image: "arch/riscv/boot/Image",
        qemu: "qemu-system-riscv64",
        machine: &["-M", "virt", "-bios", "default"],
        console: "ttyS0",
        packages: &["qemu-system-misc", "opensbi", "gcc-riscv64-linux-gnu"],
        // The virt machine's drivers (its interrupt controller above all:
        // without it the UART never probes and the console stays silent).
        fragment: "\
CONFIG_SOC_VIRT=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_OF_PLATFORM=y
CONFIG_RISCV_ISA_C=y
",
        init_cc: Some(("riscv64-linux-gnu-gcc", &["-march=rv64imac", "-mabi=lp64"])),
        objdump: &["--mattr=+c", "-M", "no-aliases"],
        variants: &[
            Variant {
                name: "ftrace",
                what: "Rust padded as C (=4 with compressed nops), ftrace on Rust functions",
                fragment: "",
                krustflags: "",
                expect: "4",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: true },
                entry: &["c.nop", "c.nop", "c.nop", "c.nop"],
            },
            Variant {
                name: "control",
                what: "the same kernel without the Rust padding (control)",
                fragment: "",
                krustflags: NO_PADDING,
                expect: "0",
                align: None,
                cpu: None,
                boot: Boot::Ftrace { padded: false },
                entry: &[],
            },
        ],
    },
];

impl ArchData {
    /// The whole config fragment of `variant`.
    fn fragment(&self, variant: &Variant) -> String {
        let common = if self.init_cc.is_some() { FTRACE_FRAGMENT } else { "" };
        format!("{common}{}{}", self.fragment, variant.fragment)
    }
}

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

/// The kernel series: `kernel/patches/series`, the patches in order.
fn kernel_patches(ctx: &Ctx) -> PathBuf {
    ctx.root.join("kernel/patches")
}

/// The tarball as found (path, size, mtime): a new `linux-source-6.1`
/// package means a new tree and new builds.
fn tarball_key() -> Result<String> {
    let meta = fs::metadata(TARBALL)
        .with_context(|| format!("cannot read {TARBALL} (package linux-source-6.1)"))?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_secs();
    Ok(format!("{TARBALL} {} {mtime}\n", meta.len()))
}

/// The tarball's key and the kernel series' digest: what the patched tree
/// (and so every kernel config) is made from.
fn tree_key(ctx: &Ctx) -> Result<String> {
    let series = crate::series::digest(&kernel_patches(ctx))?;
    Ok(format!("{}kernel series {series}\n", tarball_key()?))
}

/// The files the kernel series touches, relative to the tree: (those it
/// changes, which the tarball has; those it creates).
fn touched_files(patches: &Path) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let (mut changed, mut created) = (BTreeSet::new(), BTreeSet::new());
    for entry in crate::series::read(patches)? {
        let text = fs::read_to_string(patches.join(&entry.name))?;
        let mut old_is_null = false;
        for line in text.lines() {
            if let Some(path) = line.strip_prefix("--- ") {
                old_is_null = path.starts_with("/dev/null");
            } else if let Some(path) = line.strip_prefix("+++ ") {
                let Some(path) = path.split('\t').next().and_then(|p| p.strip_prefix("b/")) else { continue };
                if old_is_null { &mut created } else { &mut changed }.insert(path.to_string());
            }
        }
    }
    Ok((changed, created))
}

/// Applies the kernel series to `tree` with `patch -p1 --fuzz=0` (as
/// `dpkg-source` and quilt would, no fuzz); `dry_run` only checks. A patch
/// that does not apply is named, with patch's own words.
pub fn apply_kernel_series(patches: &Path, tree: &Path, dry_run: bool) -> Result<usize> {
    let entries = crate::series::read(patches)?;
    for entry in &entries {
        let file = patches.join(&entry.name);
        let mut patch = Command::new("patch");
        patch.args(["-p1", "--fuzz=0", "--forward", "--batch", "--quiet", "-i"]).arg(&file).current_dir(tree);
        if dry_run {
            patch.arg("--dry-run");
        }
        let out = patch.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", cmd::show(&patch)))?;
        if !out.status.success() {
            bail!(
                "the kernel patch {} does not apply to {} (`{}`, {}):\n{}{}",
                entry.name,
                tree.display(),
                cmd::show(&patch),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(entries.len())
}

/// Unpacks the tarball, applies the kernel series, and renames the tree
/// into place, so an interrupted unpack or a patch that fails never looks
/// done. The new tree's files keep the tarball's dates, older than the
/// objects built from the last tree, so kbuild would not see a change:
/// with a new tarball the build directories go; with only a new series,
/// every file the old or the new series touched gets a new date instead,
/// and kbuild rebuilds what depends on them.
fn unpack(ctx: &Ctx, paths: &Paths) -> Result<()> {
    let key = tree_key(ctx)?;
    let stamp = ctx.state().join("kernel-source");
    let old = fs::read_to_string(&stamp).unwrap_or_default();
    if paths.src().join("Makefile").is_file() && old.starts_with(&key) {
        Step::skip("unpack and patch linux-source-6.1", "unpacked from this tarball, with this series");
        return Ok(());
    }
    let step = Step::start(&format!("unpack {TARBALL} and apply kernel/patches"));
    fs::remove_file(&stamp).ok();
    let scratch = paths.dir.join("unpack.tmp");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    if paths.src().exists() {
        fs::remove_dir_all(paths.src())?;
    }
    let same_tarball = old.starts_with(&tarball_key()?);
    if !same_tarball {
        for entry in fs::read_dir(&paths.dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "build" || name.starts_with("build-") {
                println!("    a new tarball: removing {}", entry.path().display());
                fs::remove_dir_all(entry.path())?;
            }
        }
    }
    fs::create_dir_all(&scratch)?;
    cmd::run(Command::new("tar").args(["--no-same-owner", "-xf", TARBALL, "-C"]).arg(&scratch))?;
    let tree = scratch.join(TREE);
    let applied = apply_kernel_series(&kernel_patches(ctx), &tree, false)?;
    println!("    {applied} kernel patches applied");
    let (changed, created) = touched_files(&kernel_patches(ctx))?;
    let touched: BTreeSet<String> = changed.into_iter().chain(created).collect();
    if same_tarball {
        let before = old.lines().filter_map(|l| l.strip_prefix("touched ")).map(str::to_string);
        let now = std::time::SystemTime::now();
        for path in touched.iter().cloned().chain(before) {
            if let Ok(file) = fs::File::options().write(true).open(tree.join(&path)) {
                file.set_modified(now)?;
            }
        }
    }
    fs::rename(&tree, paths.src()).with_context(|| format!("{TARBALL} did not unpack to {TREE}/"))?;
    fs::remove_dir_all(&scratch)?;
    fs::create_dir_all(ctx.state())?;
    let record: String = touched.iter().map(|t| format!("touched {t}\n")).collect();
    fs::write(&stamp, format!("{key}{record}"))?;
    step.done();
    Ok(())
}

/// The project's init for the ftrace boots, static, with the kernel tree's
/// nolibc (no C library: nothing to configure, no FP registers).
fn build_init(ctx: &Ctx, paths: &Paths, arch: &ArchData) -> Result<()> {
    let Some((cc, flags)) = arch.init_cc else { return Ok(()) };
    let source = ctx.root.join("kernel/init.c");
    let out = paths.init(arch);
    let step = Step::start(&format!("build the init ({cc}, nolibc)"));
    cmd::output(
        Command::new(cc)
            .args(["-Os", "-static", "-nostdlib", "-Wall", "-Werror"])
            .args(["-fno-asynchronous-unwind-tables", "-fno-stack-protector"])
            .args(flags)
            .arg("-I")
            .arg(paths.src().join("tools/include/nolibc"))
            .arg("-o")
            .arg(&out)
            .arg(&source)
            .arg("-lgcc"),
    )?;
    step.done();
    Ok(())
}

/// `make` for one kernel, with every variable the recipe in docs/KERNEL.md
/// names: the arch, the suffixed LLVM tools, the toolchain's rustc by path
/// (6.1's `rust_is_available.sh` runs `command -v "$RUSTC"`, so
/// `rustc +pfe` is "not found" and `CONFIG_RUST` silently goes), bindgen,
/// the extra flags.
fn make(paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Command {
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
    make
}

/// The symbols of a fragment with the value each must have in `.config`
/// (`n` for `# CONFIG_X is not set`).
fn wanted(fragment: &str) -> Vec<(&str, &str)> {
    fragment
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
fn configure(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Result<()> {
    let out = paths.out(arch, variant);
    let config = out.join(".config");
    let fragment = arch.fragment(variant);
    let key = format!("{}{fragment}{}", tree_key(ctx)?, tc.key);
    let stamp = ctx.state().join(format!("kernel-config-{}-{}", arch.name, variant.name));
    if config.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&*key) {
        Step::skip("configure the kernel", "configured with this tree, fragment and toolchain");
        return Ok(());
    }
    let step = Step::start(&format!("configure the kernel (tinyconfig + {} lines)", wanted(&fragment).len()));
    fs::remove_file(&stamp).ok();
    fs::create_dir_all(&out)?;
    let logs = ctx.logs().join(format!("kernel-config-{}-{}", arch.name, variant.name));
    println!("    logs: {}/", logs.display());
    let log = logs.join("rustavailable.log");
    cmd::run_logged(make(paths, tc, arch, variant).arg("rustavailable"), "make rustavailable", &log, None)?;
    let said = fs::read_to_string(&log).unwrap_or_default();
    if !said.contains("Rust is available!") {
        bail!("`make rustavailable` did not say \"Rust is available!\"; the end of {}:\n{}", log.display(), cmd::tail(&said, 20));
    }
    for line in said.lines().filter(|l| l.starts_with("***") && l.trim() != "***") {
        println!("    rustavailable: {}", line.trim_start_matches('*').trim());
    }
    let fragment_file = out.join("rustc-pfe.config");
    write_if_changed(&fragment_file, fragment.as_bytes())?;
    cmd::run_logged(make(paths, tc, arch, variant).arg("tinyconfig"), "make tinyconfig", &logs.join("tinyconfig.log"), None)?;
    cmd::run_logged(
        cmd::as_user(&mut Command::new(paths.src().join("scripts/kconfig/merge_config.sh")))
            .args(["-m", "-O"])
            .arg(&out)
            .arg(&config)
            .arg(&fragment_file)
            .env("ARCH", arch.kbuild)
            .current_dir(paths.src()),
        "merge_config.sh",
        &logs.join("merge_config.log"),
        None,
    )?;
    cmd::run_logged(make(paths, tc, arch, variant).arg("olddefconfig"), "make olddefconfig", &logs.join("olddefconfig.log"), None)?;
    let text = fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
    if config_value(&text, "CONFIG_RUST") != "y" {
        bail!(
            "CONFIG_RUST is not set in {}: kconfig dropped it (its `depends on` or \
             RUST_IS_AVAILABLE failed); `make rustavailable` said:\n{}",
            config.display(),
            cmd::tail(&said, 20)
        );
    }
    let missing: Vec<String> = wanted(&fragment)
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

/// `make -jN` (vmlinux, the image, modules), every time: kbuild is the judge
/// of what is current (it rebuilds an object whose command line changed, so
/// a build directory made with other flags is put right), and a no-op make
/// takes seconds. kbuild does not track the compiler binary, though: a new
/// toolchain removes the Rust objects' directories first. Returns the
/// build's time, or None when kbuild had nothing to do.
fn compile(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant, args: &Args) -> Result<Option<Duration>> {
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
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let before = modified(&image);
    let log = ctx.logs().join(format!("kernel-build-{}-{}.log", arch.name, variant.name));
    println!("    log: {}", log.display());
    let started = Instant::now();
    cmd::run_logged(make(paths, tc, arch, variant).arg(format!("-j{}", args.jobs)), "make", &log, None)?;
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
    record_time(ctx, &format!("kernel-build-{}-{} -j{}", arch.name, variant.name, args.jobs), started)?;
    Ok(Some(time))
}

struct Audit {
    objects: usize,
    functions: usize,
    /// What was checked, for the summary.
    summary: String,
    /// Names of the functions with a record, built in and in the module
    /// (`rust_minimal.o`), and of every Rust function (for the control).
    built_in: Vec<String>,
    module: Vec<String>,
    all: Vec<String>,
    /// Functions in `.init.text`: freed after init, and ftrace with them.
    init_text: Vec<String>,
    /// Weak functions: a strong one of the same name elsewhere replaces
    /// them at link time (the Rust intrinsics the arch has in assembly).
    weak: Vec<String>,
    /// The module's functions in its `.text`, to name traced addresses.
    module_text: Vec<Symbol>,
}

/// A function symbol of an object, as `llvm-objdump -t` prints it.
#[derive(Clone, Debug, PartialEq)]
struct Symbol {
    name: String,
    section: String,
    value: u64,
    size: u64,
    weak: bool,
}

/// The function symbols of `object` (`llvm-objdump-14 -t`).
fn function_symbols(object: &Path) -> Result<Vec<Symbol>> {
    Ok(parse_symbols(&cmd::output(Command::new("llvm-objdump-14").arg("-t").arg(object))?))
}

/// `ADDRESS FLAGS SECTION<tab>SIZE [.hidden] NAME`, functions (`F`) only.
fn parse_symbols(text: &str) -> Vec<Symbol> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once('\t') else { continue };
        let (Some(address), Some(section)) = (left.split_whitespace().next(), left.split_whitespace().last()) else { continue };
        let flags = left.get(address.len()..left.len() - section.len()).unwrap_or("");
        if !flags.split_whitespace().any(|f| f == "F") {
            continue;
        }
        let mut words = right.split_whitespace();
        let (Some(size), Some(name)) = (words.next(), right.split_whitespace().last()) else { continue };
        let (Ok(value), Ok(size)) = (u64::from_str_radix(address, 16), u64::from_str_radix(size, 16)) else { continue };
        let weak = flags.split_whitespace().any(|f| f == "w");
        out.push(Symbol { name: name.to_string(), section: section.to_string(), value, size, weak });
    }
    out
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
/// through the toolchain's `pfe-check --expect` of the variant (and
/// `--align` where it has one), with `--list` for the names the boot checks
/// match ftrace's list against. The notrace test function is left out of
/// `--expect` and checked to have no record.
fn audit(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Result<Audit> {
    let step = Step::start(&format!("audit the rustc-built objects (pfe-check --expect {})", variant.expect));
    let out = paths.out(arch, variant);
    let mut objects = Vec::new();
    for dir in ["rust", "samples/rust"] {
        objects.extend(rustc_objects(&out.join(dir), &tc.rustc)?);
    }
    if !objects.iter().any(|o| o.ends_with("samples/rust/rust_minimal.o")) {
        bail!("no rustc-built samples/rust/rust_minimal.o in {}", out.display());
    }
    let help = cmd::output(Command::new(&tc.pfe_check).arg("--help"))?;
    if !help.contains("--align") {
        bail!("{} has no --align: run `./x build`, which installs this checkout's pfe-check", tc.pfe_check.display());
    }
    let ftrace = matches!(variant.boot, Boot::Ftrace { .. });
    let mut check = Command::new(&tc.pfe_check);
    check.args(["--list", "--expect", variant.expect]);
    if let Some(align) = variant.align {
        check.args(["--align", &align.to_string()]);
    }
    if ftrace && variant.expect != "0" {
        check.args(["--skip", NOTRACE]);
    }
    check.args(&objects);
    let output = check.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", cmd::show(&check)))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = ctx.logs().join(format!("kernel-pfe-check-{}-{}.log", arch.name, variant.name));
    fs::write(&log, format!("$ {}\n{text}{}", cmd::show(&check), String::from_utf8_lossy(&output.stderr)))?;
    let offenders = text.lines().filter(|l| !l.starts_with("  0x")).collect::<Vec<_>>().join("\n");
    if !output.status.success() {
        bail!(
            "`pfe-check --expect {}` failed on the rustc-built objects ({}); without the function list, {}:\n{}",
            variant.expect,
            output.status,
            log.display(),
            cmd::tail(&format!("{offenders}\n{}", String::from_utf8_lossy(&output.stderr)), 40)
        );
    }
    let (counted, functions) = summary_counts(&text)?;
    if counted != objects.len() {
        bail!("pfe-check reported {counted} objects of {}; its output is in {}", objects.len(), log.display());
    }
    let listed = listed_functions(&text);
    let mut audit = Audit {
        objects: objects.len(),
        functions,
        summary: String::new(),
        built_in: Vec::new(),
        module: Vec::new(),
        all: Vec::new(),
        init_text: Vec::new(),
        weak: Vec::new(),
        module_text: Vec::new(),
    };
    // What only the ftrace boots' console checks read.
    if ftrace {
        for object in &objects {
            for symbol in function_symbols(object)? {
                if symbol.section.starts_with(".init") {
                    audit.init_text.push(symbol.name.clone());
                }
                if symbol.weak {
                    audit.weak.push(symbol.name);
                }
            }
        }
        let module_ko = out.join("samples/rust/rust_minimal.ko");
        audit.module_text = function_symbols(&module_ko)?.into_iter().filter(|s| s.section == ".text").collect();
    }
    for (object, name, records) in &listed {
        audit.all.push(name.clone());
        if *records > 0 {
            if object.ends_with("samples/rust/rust_minimal.o") {
                audit.module.push(name.clone());
            } else {
                audit.built_in.push(name.clone());
            }
        }
    }
    if ftrace {
        match listed.iter().find(|(_, name, _)| name == NOTRACE) {
            None => bail!("no function {NOTRACE} in the rustc-built objects: the kernel series' test is missing"),
            Some((_, _, records)) if *records > 0 => {
                bail!("{NOTRACE} has {records} records: #[patchable_function_entry(prefix_nops = 0, entry_nops = 0)] did not hold")
            }
            Some(_) => {}
        }
    }
    let mut entry = String::new();
    if ftrace {
        let found = entry_instructions(&out.join("vmlinux"), arch.objdump, "rust_ftrace_target", variant.entry.len().max(4))?;
        let head: Vec<&str> = found.iter().take(variant.entry.len()).map(String::as_str).collect();
        if !variant.entry.is_empty() && head != variant.entry {
            bail!("rust_ftrace_target in vmlinux starts {found:?}, not {:?}", variant.entry);
        }
        entry = format!("; rust_ftrace_target in vmlinux starts `{}`", found.join("; "));
    }
    for object in &objects {
        println!("    {}", object.strip_prefix(&out).unwrap_or(object).display());
    }
    audit.summary = format!(
        "--expect {} met{}{}; {} functions with a record outside rust_minimal.o, {} in it",
        variant.expect,
        variant.align.map_or(String::new(), |a| format!(", patch sites {a}-aligned")),
        if ftrace && variant.expect != "0" { format!(" ({NOTRACE}: no nops, no record)") } else { String::new() },
        audit.built_in.len(),
        audit.module.len()
    ) + &entry;
    println!("    {functions} functions in {} objects: {}", objects.len(), audit.summary);
    step.done();
    Ok(audit)
}

/// The first `n` instructions of `symbol` in `image`, as
/// `llvm-objdump-14` names them (whitespace folded to one space).
fn entry_instructions(image: &Path, options: &[&str], symbol: &str, n: usize) -> Result<Vec<String>> {
    let mut objdump = Command::new("llvm-objdump-14");
    objdump.args(["-d", "--no-show-raw-insn"]).arg(format!("--disassemble-symbols={symbol}")).args(options);
    let text = cmd::output(objdump.arg(image))?;
    Ok(parse_instructions(&text).into_iter().take(n).collect())
}

/// `ADDRESS: <tab>MNEMONIC<tab>OPERANDS` lines of `llvm-objdump -d`.
fn parse_instructions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(":"))
        .filter(|(address, _)| !address.trim().is_empty() && address.trim().chars().all(|c| c.is_ascii_hexdigit()))
        .map(|(_, insn)| insn.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|insn| !insn.is_empty())
        .collect()
}

/// (object, function, records) from `pfe-check --list`: each object's
/// summary line (`PATH (KIND ARCH): ...`), then one line per function,
/// `  ADDRESS N before N after N records PAD site ALIGN NAME`.
fn listed_functions(text: &str) -> Vec<(String, String, usize)> {
    let mut object = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            if let Some((path, _)) = line.split_once(" (") {
                object = path.to_string();
            }
            continue;
        }
        // The landing pad may be two words (`bti c`): the name is the last
        // word, the record count the one before `records`.
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "records") else { continue };
        if words.len() >= 11 && words[0].starts_with("0x") && at == 6 {
            if let (Ok(records), Some(name)) = (words[5].parse(), words.last()) {
                out.push((object.clone(), name.to_string(), records));
            }
        }
    }
    out
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


/// qemu for one kernel: TCG, serial console on stdout, no reboot.
fn qemu(paths: &Paths, arch: &ArchData, variant: &Variant, initrd: Option<&Path>) -> Command {
    let mut qemu = Command::new(arch.qemu);
    qemu.args(arch.machine);
    if let Some(cpu) = variant.cpu {
        qemu.args(["-cpu", cpu]);
    }
    qemu.args(["-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot"]);
    qemu.arg("-append").arg(format!("console={} panic=-1", arch.console));
    qemu.arg("-kernel").arg(paths.out(arch, variant).join(arch.image));
    if let Some(initrd) = initrd {
        qemu.arg("-initrd").arg(initrd);
    }
    qemu
}

/// Runs `qemu` with its console in `log` until `done` holds for the
/// console's text or qemu exits; `done` stops it after `grace` more. A boot
/// that takes longer than `timeout` stops with the console's tail. Returns
/// the time to `done` and the console.
fn watch(mut qemu: Command, log: &Path, timeout: Duration, grace: Duration, done: impl Fn(&str) -> bool) -> Result<(Duration, String)> {
    let started = Instant::now();
    let mut child = cmd::spawn_logged(&mut qemu, log)?;
    let read = || fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let mut finished: Option<Duration> = None;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(100));
        if finished.is_none() && done(&read()) {
            finished = Some(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            // What qemu printed between the last look and its exit counts.
            if finished.is_none() && done(&read()) {
                finished = Some(started.elapsed());
            }
            break match finished {
                Some(time) => Ok(time),
                None => Err(format!("qemu exited ({status}) before the boot was done")),
            };
        }
        if let Some(time) = finished {
            if started.elapsed() > time + grace {
                break Ok(time);
            }
        }
        if started.elapsed() > timeout {
            break Err(format!("the boot did not finish in {}s (--boot-timeout)", timeout.as_secs()));
        }
    };
    // qemu is ours: stop it by its own handle, whatever happened.
    child.kill().ok();
    child.wait().ok();
    let text = read();
    match outcome {
        Ok(time) => Ok((time, text)),
        Err(why) => bail!("`{}`: {why}; the end of {}:\n{}", cmd::show(&qemu), log.display(), cmd::tail(&text, 30)),
    }
}

/// Boots the image until the Rust sample (built in) prints, then stops
/// qemu. Returns the time from starting qemu to the line.
fn boot_sample(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, args: &Args) -> Result<Duration> {
    let step = Step::start(&format!("boot under {} (TCG) until the Rust sample prints", arch.qemu));
    let log = ctx.logs().join(format!("kernel-boot-{}-{}.log", arch.name, variant.name));
    println!("    console: {}", log.display());
    let timeout = Duration::from_secs(args.boot_timeout);
    let (time, text) = watch(qemu(paths, arch, variant, None), &log, timeout, Duration::ZERO, |t| t.contains(SAMPLE_LINE))?;
    for line in text.lines().filter(|l| l.contains("rust_minimal:")) {
        println!("    console: {}", line.trim_end());
    }
    println!("    the sample printed {:.1}s after qemu started; qemu stopped", time.as_secs_f64());
    record_time(ctx, &format!("kernel-boot-{}", arch.name), Instant::now() - time)?;
    step.done();
    Ok(time)
}

/// The initramfs of an ftrace boot: the init, `/dev/console`, the sample
/// module; written with the kernel's own `usr/gen_init_cpio`.
fn initramfs(paths: &Paths, arch: &ArchData, variant: &Variant) -> Result<PathBuf> {
    let out = paths.out(arch, variant);
    let gen = out.join("usr/gen_init_cpio");
    let module = out.join("samples/rust/rust_minimal.ko");
    for needed in [&gen, &module, &paths.init(arch)] {
        if !needed.is_file() {
            bail!("no {}: the build should have made it", needed.display());
        }
    }
    let list = out.join("pfe-initramfs.list");
    let spec = format!(
        "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\ndir /sys 0755 0 0\n\
         file /init {} 0755 0 0\nfile /rust_minimal.ko {} 0644 0 0\n",
        paths.init(arch).display(),
        module.display()
    );
    fs::write(&list, spec)?;
    let cpio = out.join("pfe-initramfs.cpio");
    let output = Command::new(&gen).arg(&list).stdin(Stdio::null()).output().with_context(|| format!("cannot run {}", gen.display()))?;
    if !output.status.success() {
        bail!("`{} {}` failed: {}", gen.display(), list.display(), String::from_utf8_lossy(&output.stderr));
    }
    fs::write(&cpio, output.stdout)?;
    Ok(cpio)
}

/// Boots with the project's init until it says it is done (it powers the
/// machine off then), and checks the console against the audit.
fn boot_ftrace(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, args: &Args, audit: &Audit) -> Result<(Duration, Vec<String>)> {
    let Boot::Ftrace { padded } = variant.boot else { unreachable!("an ftrace variant") };
    let step = Step::start(&format!("boot under {} (TCG) with the ftrace init", arch.qemu));
    let cpio = initramfs(paths, arch, variant)?;
    let log = ctx.logs().join(format!("kernel-boot-{}-{}.log", arch.name, variant.name));
    println!("    console: {}", log.display());
    let timeout = Duration::from_secs(args.boot_timeout);
    let qemu = qemu(paths, arch, variant, Some(&cpio));
    let shown = cmd::show(&qemu);
    let (time, text) = watch(qemu, &log, timeout, Duration::from_secs(10), |t| t.contains("PFE-INIT done") || has_oops(t))?;
    let expected = Expected {
        padded,
        built_in: &audit.built_in,
        module: &audit.module,
        all: &audit.all,
        init_text: &audit.init_text,
        weak: &audit.weak,
        module_text: &audit.module_text,
    };
    let evidence = check_ftrace(&text, &expected)
        .with_context(|| format!("the console of `{shown}` ({}) does not show what it should", log.display()))?;
    for line in &evidence {
        println!("    {line}");
    }
    record_time(ctx, &format!("kernel-boot-{}-{}", arch.name, variant.name), Instant::now() - time)?;
    step.done();
    Ok((time, evidence))
}

/// What the console of an oops, a WARN or a panic has.
const OOPS_MARKS: &[&str] =
    &["Oops", "Internal error:", "Unable to handle kernel", "Kernel panic", "BUG:", "WARNING:", "Call trace:", "kernel BUG"];

fn has_oops(text: &str) -> bool {
    OOPS_MARKS.iter().any(|m| text.contains(m))
}

/// What the console of one ftrace boot must show.
struct Expected<'a> {
    padded: bool,
    /// Rust functions with a record: built into vmlinux, in the module.
    built_in: &'a [String],
    module: &'a [String],
    /// Every function of the rustc-built objects.
    all: &'a [String],
    init_text: &'a [String],
    weak: &'a [String],
    module_text: &'a [Symbol],
}

/// The module function at `address`, given where its `.text` was.
fn symbolize<'a>(address: u64, base: u64, text: &'a [Symbol]) -> Option<&'a str> {
    let offset = address.checked_sub(base)?;
    text.iter().find(|s| s.value <= offset && offset < s.value + s.size.max(1)).map(|s| s.name.as_str())
}

/// The `0x...` addresses on a trace line.
fn addresses(line: &str) -> Vec<u64> {
    line.match_indices("0x")
        .filter_map(|(i, _)| {
            let hex: String = line[i + 2..].chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .collect()
}

/// How often each name occurs.
fn counts<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut map = BTreeMap::new();
    for name in names {
        *map.entry(name).or_insert(0) += 1;
    }
    map
}

/// The value after `key ` on the console's line that starts with it.
fn value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines().filter_map(|l| l.trim_end().strip_prefix(key)).filter_map(|r| r.strip_prefix(' ')).collect()
}

/// Checks one ftrace boot's console line by line; returns the evidence
/// (counts and real excerpts) or every check that failed.
fn check_ftrace(text: &str, want: &Expected) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    let mut evidence = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    expect(text.contains("PFE-INIT done"), "the init did not finish (no `PFE-INIT done`)".into());
    let oopses: Vec<&str> = text.lines().filter(|l| OOPS_MARKS.iter().any(|m| l.contains(m))).collect();
    expect(oopses.is_empty(), format!("the kernel oopsed or warned: {}", oopses.join(" | ")));
    expect(value(text, "PFE-MOUNT tracefs") == ["0"], "tracefs did not mount".into());

    // available_filter_functions after boot, against the records.
    let listed: Vec<&str> = value(text, "PFE-AFF").into_iter().collect();
    let listed_counts = counts(listed.iter().copied());
    let rust_names = counts(want.all.iter().map(String::as_str));
    let listed_rust: usize = listed_counts.iter().filter(|(n, _)| rust_names.contains_key(*n)).map(|(_, c)| c).sum();
    expect(!listed.is_empty(), "no available_filter_functions lines".into());
    expect(!listed.contains(&NOTRACE), format!("{NOTRACE} is listed by ftrace"));
    if want.padded {
        let records = counts(want.built_in.iter().map(String::as_str));
        let deficit = |name: &str, n: usize| listed_counts.get(name).copied().unwrap_or(0) < n;
        let mut freed = Vec::new();
        let mut replaced = Vec::new();
        let mut missing = Vec::new();
        for (name, n) in &records {
            if !deficit(name, *n) {
                continue;
            }
            if want.init_text.iter().any(|i| i == name) {
                freed.push(name.to_string());
            } else if want.weak.iter().any(|w| w == name) {
                replaced.push(name.to_string());
            } else {
                missing.push(name.to_string());
            }
        }
        expect(
            missing.is_empty(),
            format!("{} of the {} Rust functions with a record are not listed, e.g. {}", missing.len(), want.built_in.len(), missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")),
        );
        evidence.push(format!(
            "available_filter_functions: {listed_rust} of its {} lines name Rust functions; the {} records in the built-in Rust objects are all listed by their function's name but {} weak ones the arch replaces with its own ({}), which ftrace lists under the name of the function before them, and {} freed with .init.text",
            listed.len(),
            want.built_in.len(),
            replaced.len(),
            replaced.join(", "),
            freed.len()
        ));
    } else {
        expect(listed_rust == 0, format!("{listed_rust} Rust functions are listed without the padding"));
        evidence.push(format!("available_filter_functions: 0 Rust functions of {} lines (control)", listed.len()));
    }

    // The sample module: loaded and unloaded twice (function, function_graph).
    let loads = value(text, "PFE-MODULE-LOAD");
    let unloads = value(text, "PFE-MODULE-UNLOAD");
    expect(loads == ["0", "0"] && unloads == ["0", "0"], format!("module loads {loads:?}, unloads {unloads:?}, not 0 twice"));
    for line in SAMPLE_LINES {
        let n = text.lines().filter(|l| l.contains(line)).count();
        expect(n == 2, format!("`{line}` printed {n} times, not twice"));
    }
    let module_listed: Vec<&str> =
        value(text, "PFE-AFF-MODULE").into_iter().filter_map(|l| l.strip_suffix(" [rust_minimal]")).collect();
    if want.padded {
        // init_module is in .init.text: freed, and unlisted, once it has run.
        let module_records = counts(want.module.iter().map(String::as_str).filter(|n| !want.init_text.iter().any(|i| i == n)));
        let module_counts = counts(module_listed.iter().copied());
        expect(
            !want.module.is_empty() && module_records == module_counts,
            format!("the module's listed functions {module_counts:?} are not its records {module_records:?}"),
        );
        evidence.push(format!(
            "module rust_minimal: {} functions listed after loading: its {} records but init_module (.init.text, freed)",
            module_listed.len(),
            want.module.len()
        ));
    } else {
        expect(module_listed.is_empty(), format!("{} module functions listed without the padding", module_listed.len()));
    }

    // The tracers: while the module is loaded its functions have names;
    // after unloading (its Drop) they are addresses in its former .text.
    let traced = |tag: &str| -> Vec<&str> { value(text, &format!("PFE-TRACE {tag}")) };
    let (function, function_unload) = (traced("function"), traced("function-unload"));
    let (graph, graph_unload) = (traced("graph"), traced("graph-unload"));
    let bases: Vec<u64> = value(text, "PFE-MODULE-TEXT").iter().filter_map(|v| addresses(v).first().copied()).collect();
    let dropped = |lines: &[&str], base: Option<&u64>| -> Vec<String> {
        let Some(base) = base else { return Vec::new() };
        let mut names: Vec<String> = lines
            .iter()
            .flat_map(|l| addresses(l))
            .filter_map(|a| symbolize(a, *base, want.module_text))
            .filter(|n| n.contains("11RustMinimal") && n.ends_with("4Drop4drop"))
            .map(str::to_string)
            .collect();
        names.dedup();
        names
    };
    let filter = value(text, "PFE-FILTER-RUST-RESULT");
    if want.padded {
        expect(filter == ["0", "0"], format!("set_ftrace_filter `_R*` gave {filter:?}, not 0 twice"));
        expect(bases.len() == 2, format!("the module's .text was found {} times, not twice", bases.len()));
        let init = |lines: &[&str]| lines.iter().filter(|l| l.contains("12rust_minimal") && l.contains("6Module4init")).count();
        let kernel_crate = function.iter().filter(|l| l.contains("6kernel")).count();
        let drop_fn = dropped(&function_unload, bases.first());
        expect(init(&function) > 0, "the function tracer shows no call of the module's init".into());
        expect(kernel_crate > 0, "the function tracer shows no call of the kernel crate".into());
        expect(!drop_fn.is_empty(), "the function tracer shows no call of the module's Drop at unloading".into());
        let entries = graph.iter().filter(|l| l.trim_end().ends_with(") {") && l.contains("_R")).count();
        let returns = graph.iter().filter(|l| l.contains("} /* _R")).count();
        let leaves = graph.iter().filter(|l| l.trim_end().ends_with(");") && l.contains("_R")).count();
        let graph_init = graph.iter().filter(|l| l.contains("6Module4init") && l.trim_end().ends_with(") {")).count();
        let graph_init_ret = graph.iter().filter(|l| l.contains("} /* ") && l.contains("6Module4init")).count();
        let graph_drop = dropped(&graph_unload, bases.get(1));
        expect(entries > 0 && returns == entries, format!("function_graph: {entries} Rust entries, {returns} returns"));
        expect(graph_init > 0 && graph_init_ret == graph_init, format!("function_graph: the module's init entered {graph_init}, returned {graph_init_ret} times"));
        expect(!graph_drop.is_empty(), "function_graph shows no call of the module's Drop at unloading".into());
        evidence.push(format!(
            "function tracer: {} Rust calls while loading (module init {}, kernel crate {kernel_crate}), {} while unloading, {} named by the module's symbols as {}",
            function.len(),
            init(&function),
            function_unload.len(),
            drop_fn.len(),
            drop_fn.join(", ")
        ));
        evidence.push(format!(
            "function_graph: {entries} Rust entries, each with its return, {leaves} leaf calls; module init entered and returned {graph_init} time(s); Drop at unloading: {}",
            graph_drop.join(", ")
        ));
        let excerpt = function.iter().filter(|l| l.contains("6Module4init")).take(1)
            .chain(graph.iter().filter(|l| l.contains("6Module4init")).take(2))
            .chain(function_unload.iter().take(2));
        for line in excerpt {
            evidence.push(format!("  | {}", line.trim()));
        }
    } else {
        expect(filter.iter().all(|f| *f == "-22") && filter.len() == 2, format!("set_ftrace_filter `_R*` gave {filter:?}, not -22 (EINVAL) twice"));
        let all_traced = function.len() + function_unload.len() + graph.len() + graph_unload.len();
        expect(all_traced == 0, "Rust functions were traced without the padding".into());
        evidence.push("set_ftrace_filter `_R*`: -22 (EINVAL) for both tracers: nothing to trace".into());
    }

    // The redirection and the notrace function (rust_ftrace_test.c).
    expect(value(text, "PFE-REDIRECT-RUN") == ["0"], "writing 1 to rust_ftrace_test's `run` failed".into());
    let redirect: Vec<&str> = text.lines().filter(|l| l.contains("rust_ftrace_test: redirect:")).collect();
    let want_redirect = if want.padded {
        "redirect: rust_ftrace_target(6, 7) = 6007 before, 1000042 redirected, 6007 after; replacement(6, 7) = 1000042"
    } else {
        "redirect: rust_ftrace_target(6, 7) = 6007; ftrace_set_filter_ip refused it: -22"
    };
    expect(redirect.len() == 1 && redirect[0].contains(want_redirect), format!("the redirection reported {redirect:?}, not `{want_redirect}`"));
    let notrace: Vec<&str> = text.lines().filter(|l| l.contains("rust_ftrace_test: notrace:")).collect();
    let want_notrace = "notrace: rust_ftrace_notrace(6, 7) = 13; ftrace_set_filter_ip: -22";
    expect(notrace.len() == 1 && notrace[0].contains(want_notrace), format!("the notrace test reported {notrace:?}"));
    expect(value(text, "PFE-NOTRACE-FILTER") == ["-22"], "set_ftrace_filter took the notrace function".into());
    for line in redirect.iter().chain(notrace.iter()) {
        evidence.push(format!("  | {}", line.trim()));
    }
    evidence.push(format!("set_ftrace_filter {NOTRACE}: -22 (EINVAL); no oops, no WARN"));
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(evidence)
}

/// `./x test`'s check that the kernel series applies, without fuzz, to the
/// pinned `linux-source-6.1`: only the files the series touches are taken
/// from the tarball (seconds, not the whole tree), into a scratch directory.
#[cfg(any(test, feature = "bench"))]
pub fn series_applies(ctx: &Ctx) -> Result<()> {
    let patches = kernel_patches(ctx);
    let touched: BTreeSet<String> = touched_files(&patches)?.0.into_iter().map(|p| format!("{TREE}/{p}")).collect();
    if touched.is_empty() {
        bail!("the kernel series in {} touches no file", patches.display());
    }
    if !Path::new(TARBALL).is_file() {
        bail!("no {TARBALL}: install the package linux-source-6.1 (`./x deps` does)");
    }
    // The tarball's files, taken once per tarball and list of files
    // (decompressing it takes most of a minute), then copied for each run.
    let listed: String = touched.iter().map(|t| format!("{t}\n")).collect();
    let key = crate::fetch::sha256_of(format!("{}{listed}", tarball_key()?).as_bytes())?;
    let pristine = ctx.cache.join("kernel").join(format!("series-base-{}", &key[..16]));
    if !pristine.join(TREE).is_dir() {
        let scratch = ctx.cache.join("kernel").join("series-base.tmp");
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir_all(&scratch)?;
        cmd::run(Command::new("tar").args(["--no-same-owner", "-xf", TARBALL, "-C"]).arg(&scratch).args(&touched))?;
        if pristine.exists() {
            fs::remove_dir_all(&pristine)?;
        }
        fs::rename(&scratch, &pristine)?;
    }
    let dir = crate::paths::scratch(ctx, "kernel-series")?;
    cmd::run(Command::new("cp").arg("-a").arg(pristine.join(TREE)).arg(&dir))?;
    let applied = apply_kernel_series(&patches, &dir.join(TREE), false)?;
    if applied == 0 {
        bail!("the kernel series is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every patch is listed once, and says what and why: a `From:`, a
    /// subject with a `subsystem: ` prefix, a body before the diff.
    #[test]
    fn kernel_patches_are_listed_and_explained() {
        let patches = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/patches");
        let listed: Vec<String> = crate::series::read(&patches).unwrap().into_iter().map(|e| e.name).collect();
        let mut files: Vec<String> = fs::read_dir(&patches)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".patch"))
            .collect();
        files.sort();
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), listed.len(), "a patch is listed twice");
        assert_eq!(sorted, files, "kernel/patches/series and the .patch files differ");
        for name in &listed {
            let text = fs::read_to_string(patches.join(name)).unwrap();
            let (head, diff) = text.split_once("\n--- ").unwrap_or_else(|| panic!("{name}: no diff"));
            assert!(head.starts_with("From: "), "{name}: no From:");
            let subject = head.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_else(|| panic!("{name}: no Subject:"));
            assert!(subject.contains(": ") && subject.len() <= 75, "{name}: subject `{subject}`");
            let body = head.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("");
            assert!(body.lines().count() >= 3, "{name}: the body does not say why");
            assert!(body.lines().all(|l| l.len() <= 75), "{name}: a body line is longer than 75 columns");
            assert!(diff.contains("\n+++ "), "{name}: no diff");
        }
    }

    #[test]
    fn every_arch_has_data_and_a_name_to_parse() {
        for arch in [Arch::X86_64, Arch::Arm64, Arch::Riscv64] {
            let data = arch.data();
            assert_eq!(Arch::parse(data.name), Some(arch));
            assert!(Arch::NAMES.contains(data.name));
            assert!(!data.variants.is_empty());
        }
        assert_eq!(Arch::parse("aarch64"), None);
    }

    #[test]
    fn fragments_ask_for_rust_werror_and_what_each_boot_needs() {
        for data in ARCHES {
            for variant in data.variants {
                let fragment = data.fragment(variant);
                let wanted = wanted(&fragment);
                for (name, value) in [("CONFIG_RUST", "y"), ("CONFIG_WERROR", "y"), ("CONFIG_SAMPLES_RUST", "y")] {
                    assert!(wanted.contains(&(name, value)), "{} {}: no {name}={value}", data.name, variant.name);
                }
                let module = if variant.boot == Boot::Sample { "y" } else { "m" };
                assert!(wanted.contains(&("CONFIG_SAMPLE_RUST_MINIMAL", module)), "{} {}", data.name, variant.name);
                if let Boot::Ftrace { padded } = variant.boot {
                    for name in ["CONFIG_FUNCTION_GRAPH_TRACER", "CONFIG_DYNAMIC_FTRACE_WITH_REGS", "CONFIG_MODULE_UNLOAD", "CONFIG_SAMPLE_RUST_FTRACE_TEST"] {
                        assert!(wanted.contains(&(name, "y")), "{} {}: no {name}", data.name, variant.name);
                    }
                    assert!(data.init_cc.is_some());
                    assert_eq!(padded, variant.expect != "0", "{} {}", data.name, variant.name);
                    assert_eq!(padded, !variant.krustflags.contains("=0"), "{} {}", data.name, variant.name);
                }
            }
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

    #[test]
    fn listed_functions_carry_their_object_and_records() {
        let text = "/b/samples/rust/rust_ftrace_target.o (relocatable aarch64): 3 functions, 2 with a record; 2 records in 1 sections (flags awo), 0 orphans\n  \
                    0x00000000   0 before   2 after  1 records -       site     4-al rust_ftrace_target\n  \
                    0x00000010   0 before   0 after  0 records bti c   site     4-al rust_ftrace_notrace\n  \
                    --expect 2,0: 2/2 functions match (1 skipped)\n";
        let listed = listed_functions(text);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0], ("/b/samples/rust/rust_ftrace_target.o".to_string(), "rust_ftrace_target".to_string(), 1));
        assert_eq!(listed[1], ("/b/samples/rust/rust_ftrace_target.o".to_string(), "rust_ftrace_notrace".to_string(), 0));
    }
    fn testdata(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/testdata").join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The audit's side of a real arm64 boot (`kernel/testdata`, the
    /// console of `./x kernel --arch arm64` cut to 40 of its 1601 Rust
    /// functions): what the console is checked against.
    struct Audited {
        built_in: Vec<String>,
        module: Vec<String>,
        init_text: Vec<String>,
        weak: Vec<String>,
        module_text: Vec<Symbol>,
    }

    fn audited(console: &str) -> Audited {
        let rust = |n: &&str| n.starts_with("_R") || n.starts_with("rust_ftrace_");
        let weak: Vec<String> = ["__ashlti3", "__ashrti3", "__lshrti3"].map(String::from).to_vec();
        let mut built_in: Vec<String> =
            value(console, "PFE-AFF").into_iter().filter(rust).map(String::from).collect();
        built_in.extend(weak.iter().cloned());
        let mut module: Vec<String> = value(console, "PFE-AFF-MODULE")
            .into_iter()
            .filter_map(|l| l.strip_suffix(" [rust_minimal]"))
            .map(String::from)
            .collect();
        module.sort();
        module.dedup();
        module.push("init_module".into());
        let symbols = parse_symbols(&testdata("arm64-rust_minimal.ko.symbols"));
        Audited {
            built_in,
            module,
            init_text: vec!["init_module".into()],
            weak,
            module_text: symbols.into_iter().filter(|s| s.section == ".text").collect(),
        }
    }

    fn check(console: &str, padded: bool, a: &Audited) -> Result<Vec<String>> {
        let mut all = a.built_in.clone();
        all.extend(a.module.iter().cloned());
        all.push(NOTRACE.into());
        let want = Expected {
            padded,
            built_in: &a.built_in,
            module: &a.module,
            all: &all,
            init_text: &a.init_text,
            weak: &a.weak,
            module_text: &a.module_text,
        };
        check_ftrace(console, &want)
    }

    #[test]
    fn a_real_traced_boot_passes_every_check() {
        let console = testdata("arm64-ftrace.console");
        let a = audited(&console);
        let evidence = check(&console, true, &a).unwrap().join("\n");
        for said in [
            "1000042 redirected, 6007 after",
            "3 weak ones the arch replaces with its own (__ashlti3, __ashrti3, __lshrti3)",
            "but init_module (.init.text, freed)",
            "11RustMinimalNtNtNtCshNso7GI6UKi_4core3ops4drop4Drop4drop",
            "each with its return",
        ] {
            assert!(evidence.contains(said), "no `{said}` in:\n{evidence}");
        }
        // The serial console's line ends.
        check(&console.replace('\n', "\r\n"), true, &a).unwrap();
        // Not what a kernel without the padding shows.
        assert!(check(&console, false, &a).is_err());
    }

    #[test]
    fn a_real_control_boot_passes_as_a_control_only() {
        let console = testdata("arm64-control.console");
        let a = audited(&testdata("arm64-ftrace.console"));
        let evidence = check(&console, false, &a).unwrap().join("\n");
        assert!(evidence.contains("ftrace_set_filter_ip refused it: -22"), "{evidence}");
        let err = format!("{:#}", check(&console, true, &a).unwrap_err());
        assert!(err.contains("not listed") && err.contains("redirection"), "{err}");
    }

    #[test]
    fn each_missing_or_wrong_line_fails_the_boot() {
        let console = testdata("arm64-ftrace.console");
        let a = audited(&console);
        let first_rust = value(&console, "PFE-AFF").into_iter().find(|n| n.starts_with("_R")).unwrap().to_string();
        let cases: Vec<(String, &str)> = vec![
            (console.replace("1000042 redirected", "6007 redirected"), "redirection"),
            (console.replace("PFE-NOTRACE-FILTER -22", "PFE-NOTRACE-FILTER 0"), "notrace function"),
            (console.replace(&format!("PFE-AFF {first_rust}\n"), ""), "not listed"),
            (console.replace("PFE-INIT done", ""), "did not finish"),
            (console.replace("PFE-MODULE-UNLOAD 0", "PFE-MODULE-UNLOAD -16"), "unloads"),
            (console.replace("PFE-INIT done", "Internal error: Oops - BTI: 0000000034000002 [#1] SMP\nPFE-INIT done"), "oopsed"),
            (console.replace("PFE-MODULE-TEXT 0xffffffc000250000", "PFE-MODULE-TEXT 0xffffffc000150000"), "Drop"),
            (console.lines().filter(|l| !(l.contains("PFE-TRACE graph ") && l.contains("} /*"))).collect::<Vec<_>>().join("\n"), "returns"),
        ];
        for (broken, why) in cases {
            assert_ne!(broken, console, "the case `{why}` changed nothing");
            let err = format!("{:#}", check(&broken, true, &a).unwrap_err());
            assert!(err.contains(why), "expected `{why}` in: {err}");
        }
    }

    #[test]
    fn symbols_and_instructions_are_read_as_llvm_objdump_prints_them() {
        let symbols = parse_symbols(&testdata("arm64-rust_minimal.ko.symbols"));
        let init = symbols.iter().find(|s| s.name == "init_module").unwrap();
        assert_eq!(init.section, ".init.text");
        assert!(!init.weak);
        assert!(symbols.iter().any(|s| s.section == ".text" && s.name.ends_with("4Drop4drop")));
        let weak = parse_symbols("0000000000000288  w    F .text\t0000000000000048 .hidden __ashlti3\n");
        assert_eq!(weak, [Symbol { name: "__ashlti3".into(), section: ".text".into(), value: 0x288, size: 0x48, weak: true }]);
        let text = "\nvmlinux:\tfile format elf64-littleaarch64\n\nDisassembly of section .text:\n\n\
                    ffffffc00823be3c <rust_ftrace_target>:\n\
                    ffffffc00823be3c:      \tbti\tc\nffffffc00823be40:      \tnop\n\
                    ffffffc00823be48:      \tpaciasp\nffffffc00823be4c:      \tstp\tx29, x30, [sp, #-16]!\n";
        assert_eq!(parse_instructions(text), ["bti c", "nop", "paciasp", "stp x29, x30, [sp, #-16]!"]);
        assert_eq!(addresses("init-1 [000] 1.1: 0xffffffc0002506f8 <-0xffffffc000250708"), [0xffffffc0002506f8, 0xffffffc000250708]);
        let text_syms = vec![Symbol { name: "f".into(), section: ".text".into(), value: 0x10, size: 0x8, weak: false }];
        assert_eq!(symbolize(0x1014, 0x1000, &text_syms), Some("f"));
        assert_eq!(symbolize(0x1018, 0x1000, &text_syms), None);
        assert_eq!(symbolize(0x0fff, 0x1000, &text_syms), None);
    }

    /// A patch that no longer applies is named, with patch's words, and
    /// nothing is renamed into place (the caller's scratch tree is left).
    #[test]
    fn a_patch_that_does_not_apply_is_named() {
        let tmp = std::env::temp_dir().join(format!("pfe-kseries-{}", std::process::id()));
        let (patches, tree) = (tmp.join("patches"), tmp.join("tree"));
        fs::create_dir_all(&patches).unwrap();
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 2\n").unwrap();
        fs::write(
            patches.join("good.patch"),
            "From: x\nSubject: a: b\n\nwhy\n--- a/Makefile\n+++ b/Makefile\n@@ -1,2 +1,3 @@\n VERSION = 6\n PATCHLEVEL = 2\n+SUBLEVEL = 0\n",
        )
        .unwrap();
        fs::write(
            patches.join("stale.patch"),
            "From: x\nSubject: a: c\n\nwhy\n--- a/Makefile\n+++ b/Makefile\n@@ -1,2 +1,2 @@\n VERSION = 6\n-PATCHLEVEL = 1\n+PATCHLEVEL = 3\n",
        )
        .unwrap();
        fs::write(patches.join("series"), "good.patch\nstale.patch\n").unwrap();
        let dry = format!("{:#}", apply_kernel_series(&patches, &tree, true).unwrap_err());
        assert!(dry.contains("stale.patch"), "{dry}");
        let err = format!("{:#}", apply_kernel_series(&patches, &tree, false).unwrap_err());
        assert!(err.contains("the kernel patch stale.patch does not apply") && err.contains("FAILED"), "{err}");
        assert!(fs::read_to_string(tree.join("Makefile")).unwrap().contains("SUBLEVEL = 0"));
        let (changed, created) = touched_files(&patches).unwrap();
        assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["Makefile"]);
        assert!(created.is_empty());
        fs::remove_dir_all(&tmp).unwrap();
    }

}
