//! `./x deb`: the toolchain `./x build` made, as the Debian binary package
//! `rustc-pfe` (amd64), built with Debian's own tools: `dpkg-shlibdeps` for
//! the library dependencies, `dpkg-gencontrol` for the control file,
//! `dpkg-deb` for the archive, `lintian` as the judge. Installed, the
//! toolchain lives under `/usr/lib/rustc-pfe` (a sysroot: `bin/`, `lib/`)
//! and `rustc-pfe`, `rustdoc-pfe`, `cargo-pfe` and `pfe-check` are links in
//! `/usr/bin`, beside Debian's `rustc` and `cargo`, replacing nothing. rustc
//! finds its sysroot from its executable's real path and its libraries
//! through the `$ORIGIN/../lib` RUNPATH bootstrap gives it (`rpath = true`),
//! so nothing sets `LD_LIBRARY_PATH`.
//!
//! Like `./x kernel`, it never builds the compiler: it refuses a missing
//! toolchain, one not built from the cached tree's HEAD (the series id in the
//! version), and a tree with uncommitted changes. `./x deb --check` then
//! installs the package with `apt-get`, uses it as a person would with the
//! cache's toolchain and rustc tree hidden, and purges it.

use crate::apply;
use crate::build::{self, record_time};
use crate::cmd::{self, Step};
use crate::deps;
use crate::fetch;
use crate::paths::{Ctx, CROSS, HOST};
use crate::prepare::git;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod check;

#[derive(Default)]
pub struct Args {
    /// Install the package, prove it works, purge it.
    pub check: bool,
}

pub const PACKAGE: &str = "rustc-pfe";
/// The installed toolchain: a sysroot, as rustc finds it from its own path.
const PREFIX: &str = "usr/lib/rustc-pfe";
/// The commands in `/usr/bin`: each a relative link to the toolchain's file.
const COMMANDS: &[(&str, &str)] =
    &[("rustc-pfe", "rustc"), ("rustdoc-pfe", "rustdoc"), ("cargo-pfe", "cargo"), ("pfe-check", "pfe-check")];

/// What `./x deb` runs beyond `./x build`'s packages: dpkg-dev
/// (`dpkg-shlibdeps`, `dpkg-gencontrol`), lintian, help2man (pfe-check's
/// man page from its `--help`), binutils for both architectures (`strip`).
const TOOLS: &[&str] = &["dpkg-dev", "lintian", "help2man", "binutils", "binutils-aarch64-linux-gnu"];

/// What the package needs beyond what `dpkg-shlibdeps` finds in its ELF
/// files (libLLVM-14, libc6, libgcc-s1):
/// - Debian's cargo 1.65 (package version 0.66), which `cargo-pfe` runs;
///   pinned to that series as Debian's rustc pins its cargo, because a newer
///   cargo asks rustc 1.63 for options it does not have;
/// - what rustc links programs with, as Debian's rustc declares it: gcc (the
///   `cc` it runs), the C library's development files, binutils.
const DEPENDS: &str = "cargo (>= 0.66.0~~), cargo (<< 0.67.0~~), gcc, libc6-dev | libc-dev, binutils";
/// Needed only to link aarch64 *programs* (`-C linker=aarch64-linux-gnu-gcc`):
/// objects, rlibs and kernel code for aarch64 need no linker. A Suggests,
/// not a Recommends: apt installs Recommends by default, and most users of
/// this x86_64 package would get a cross toolchain they never run.
const SUGGESTS: &str = "gcc-aarch64-linux-gnu, libc6-dev-arm64-cross";

/// The lintian tags the package overrides: tag, the files it is accepted
/// for, why. They become the package's `/usr/share/lintian/overrides/rustc-pfe`
/// (the reasons as comments); any other warning or error fails `./x deb`.
const LINTIAN_OVERRIDES: &[(&str, &str, &str)] = &[
    (
        "no-code-sections",
        "[usr/lib/rustc-pfe/lib/rustlib/*/lib/*.rlib]",
        "An error, and a false one: rlibs are ar archives of object files plus \
         rustc's metadata, which lintian does not understand. Debian's own \
         libstd-rust-dev overrides the same tag on the same files.",
    ),
    (
        "binary-from-other-architecture",
        "[usr/lib/rustc-pfe/lib/rustlib/aarch64-unknown-linux-gnu/lib/*.so]",
        "An error, and intended: the aarch64 standard library is the cross \
         target's code (rustc links aarch64 programs to it with -C \
         prefer-dynamic); the host never loads it. Only its two shared \
         objects are ELF files; its rlibs are archives.",
    ),
    (
        "executable-not-elf-or-script",
        "[usr/lib/rustc-pfe/lib/rustlib/src/rust/library/*]",
        "The library sources as upstream's rust-src component ships them, \
         modes from git included: CI helpers of the vendored crates \
         (backtrace, stdarch) that are executable without a #! line. Never \
         run from here; Debian's rust-src overrides the same tag.",
    ),
    (
        "script-not-executable",
        "[usr/lib/rustc-pfe/lib/rustlib/src/rust/library/*]",
        "The library sources as upstream's rust-src component ships them: \
         CI helpers of stdarch with a #! line that are not executable in \
         git. Never run from here.",
    ),
    (
        "unusual-interpreter",
        "python [usr/lib/rustc-pfe/lib/rustlib/src/rust/library/core/src/unicode/printable.py]",
        "The library sources as upstream's rust-src component ships them: \
         core's generator of its printable-character tables, run by hand \
         upstream, never from here.",
    ),
];

/// What upstream's rust-src component leaves out of `library/`
/// (`src/bootstrap/dist.rs`, the `Src` step, in this tree): directories it
/// does not need, and version-control files anywhere.
const SOURCES_LEFT_OUT: &[&str] = &[
    "library/backtrace/crates",
    "library/stdarch/Cargo.toml",
    "library/stdarch/crates/stdarch-verify",
    "library/stdarch/crates/intrinsic-test",
];
const VCS_FILES: &[&str] = &[".git", ".gitignore", ".gitmodules", ".gitattributes", ".cvsignore", ".hgignore"];

/// Everything the package's texts are made of.
struct Meta {
    /// Debian's rustc version the series applies to, from the tree's
    /// `debian/changelog` (`1.63.0+dfsg1-2`).
    base: String,
    /// The series id: the cached tree's HEAD, shortened.
    series: String,
    /// `<base>+pfe.<series>`.
    version: String,
    /// The series' patches, by subject, in order.
    patches: Vec<String>,
    /// `Name <address>`: `DEBFULLNAME` and `DEBEMAIL` if set (as `dch`
    /// reads them), else the series' author.
    maintainer: String,
    /// When the toolchain was built (the `state/built` stamp), as
    /// `SOURCE_DATE_EPOCH` for every date and timestamp in the package.
    epoch: u64,
}

/// The toolchain `./x build` made, checked.
struct Toolchain {
    dir: PathBuf,
    /// The `state/built` stamp: the tree's HEAD and the config it was built with.
    stamp: String,
    /// That HEAD, the cached tree's HEAD too (`toolchain` checks).
    head: String,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    let tc = toolchain(ctx)?;
    deps::install("install the packaging tools", TOOLS)?;
    let meta = meta(ctx, &tc.head)?;
    let deb = package(ctx, &tc, &meta)?;
    let size = fs::metadata(&deb)?.len();
    println!("./x deb: done in {}", cmd::elapsed(started.elapsed()));
    println!("    {} ({:.1} MB)", deb.display(), size as f64 / 1e6);
    if args.check {
        let started = Instant::now();
        check::run(ctx, &deb)?;
        record_time(ctx, "deb-check", started)?;
        println!("./x deb --check: done in {}", cmd::elapsed(started.elapsed()));
    }
    Ok(())
}

/// The toolchain's files, or a clear error: this command never builds them.
fn toolchain(ctx: &Ctx) -> Result<Toolchain> {
    let dir = ctx.toolchain();
    for tool in ["rustc", "rustdoc", "cargo", "pfe-check"] {
        let path = dir.join("bin").join(tool);
        if !path.is_file() {
            bail!(
                "no {}: `./x deb` packages the toolchain `./x build` makes and never builds one; \
                 run `./x build` first",
                path.display()
            );
        }
    }
    for target in [HOST, CROSS] {
        if !build::std_present(&dir, target) {
            bail!("the toolchain in {} has no std for {target}: run `./x build`", dir.display());
        }
    }
    let stamp_file = ctx.state().join("built");
    let stamp = fs::read_to_string(&stamp_file).with_context(|| {
        format!("no {}: nothing says which tree built the toolchain; run `./x build`", stamp_file.display())
    })?;
    let built = stamp.lines().find_map(|l| l.strip_prefix("head ")).unwrap_or("").trim();
    let head = apply::head(&ctx.src())?;
    if built != head {
        bail!(
            "the toolchain was built from {}, but the cached tree's HEAD is {}: the package's \
             version names the series it holds, so run `./x build` first",
            short(built),
            short(&head)
        );
    }
    let dirty = apply::uncommitted(&ctx.src())?;
    if !dirty.is_empty() {
        bail!(
            "uncommitted changes in {}:\n{}\nthe package is named after HEAD ({}); commit them and \
             `./x refresh`, or throw them away with `./x build --discard`",
            ctx.src().display(),
            cmd::tail(&dirty, 20),
            short(&head)
        );
    }
    Ok(Toolchain { dir, stamp, head })
}

/// A commit id as the version and messages show it.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn meta(ctx: &Ctx, head: &str) -> Result<Meta> {
    let src = ctx.src();
    let changelog = fs::read_to_string(src.join("debian/changelog"))
        .with_context(|| format!("cannot read {}", src.join("debian/changelog").display()))?;
    let base = changelog_version(&changelog)
        .with_context(|| format!("no version in the first line of {}", src.join("debian/changelog").display()))?;
    let series = short(head).to_string();
    let patches: Vec<String> = cmd::output(git(&src).args(["log", "--reverse", "--format=%s", "base..HEAD"]))?
        .lines()
        .map(String::from)
        .collect();
    let maintainer = match (std::env::var("DEBFULLNAME"), std::env::var("DEBEMAIL")) {
        (Ok(name), Ok(email)) if !name.trim().is_empty() && email.contains('@') => {
            format!("{} <{}>", name.trim(), email.trim())
        }
        _ => cmd::output(git(&src).args(["log", "-1", "--format=%an <%ae>", "HEAD"]))?.trim().to_string(),
    };
    let epoch = fs::metadata(ctx.state().join("built"))?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(Meta { version: format!("{base}+pfe.{series}"), base, series, patches, maintainer, epoch })
}

/// `1.63.0+dfsg1-2` from `rustc (1.63.0+dfsg1-2) unstable; urgency=medium`.
fn changelog_version(changelog: &str) -> Option<String> {
    let first = changelog.lines().next()?;
    let open = first.find('(')?;
    let close = first[open..].find(')')? + open;
    let version = &first[open + 1..close];
    (!version.is_empty()).then(|| version.to_string())
}

/// `date` for the epoch, in UTC.
fn date(epoch: u64, format: &str) -> Result<String> {
    Ok(cmd::output(Command::new("date").args(["-u", "-d", &format!("@{epoch}"), format]))?.trim().to_string())
}

/// What the package is made of; the package is current when this is.
fn key(ctx: &Ctx, tc: &Toolchain, meta: &Meta) -> Result<String> {
    // The packaging code itself: a change in how the package is made makes
    // a new one (its source, not the driver's binary, which changes with
    // every other module too).
    let code = fetch::sha256(&ctx.root.join("xtask/src/deb.rs"))?;
    let wrapper = fetch::sha256_of(build::cargo_wrapper(&format!("/{PREFIX}/bin")).as_bytes())?;
    let pfe_check = fetch::sha256(&tc.dir.join("bin/pfe-check"))?;
    Ok(format!(
        "{}version {}\nmaintainer {}\nepoch {}\ndeb.rs {code}\ncargo-wrapper {wrapper}\npfe-check {pfe_check}\n",
        tc.stamp, meta.version, meta.maintainer, meta.epoch
    ))
}

/// Builds the package (unless it is current) and returns its path.
fn package(ctx: &Ctx, tc: &Toolchain, meta: &Meta) -> Result<PathBuf> {
    let out = ctx.cache.join("deb");
    let deb = out.join(format!("{PACKAGE}_{}_amd64.deb", meta.version));
    let key = key(ctx, tc, meta)?;
    let stamp = ctx.state().join("deb");
    let name = format!("build the package {PACKAGE} {}", meta.version);
    if deb.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&*key) {
        Step::skip(&name, "built from this toolchain and passed lintian");
        return Ok(deb);
    }
    fs::remove_file(&stamp).ok();
    let step = Step::start(&name);
    let started = Instant::now();
    let work = out.join("build");
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let pkg = work.join("debian").join(PACKAGE);
    fs::create_dir_all(pkg.join("DEBIAN"))?;
    let prefix = pkg.join(PREFIX);
    let host_elf = stage_toolchain(tc, &prefix)?;
    stage_sources(ctx, &prefix)?;
    stage_commands(&pkg)?;
    stage_docs(ctx, meta, &work)?;
    fix_modes(&pkg)?;
    check_links(&pkg)?;
    control(&work, meta, &host_elf)?;
    // One package file in the directory, so `apt-get install ./rustc-pfe_*.deb` means it.
    for entry in fs::read_dir(&out)?.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&format!("{PACKAGE}_")) && file.ends_with(".deb") {
            fs::remove_file(entry.path())?;
        }
    }
    cmd::run_logged(
        Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", meta.epoch.to_string())
            .args(["--root-owner-group", "--build"])
            .arg(&pkg)
            .arg(&deb),
        "dpkg-deb --build",
        &ctx.logs().join("deb-build.log"),
        None,
    )?;
    lintian(&deb)?;
    fs::remove_dir_all(&work)?;
    fs::create_dir_all(ctx.state())?;
    fs::write(&stamp, key)?;
    record_time(ctx, "deb", started)?;
    step.done();
    Ok(deb)
}

/// The toolchain's `bin/` and `lib/` under `prefix`: ELF executables and
/// shared objects stripped as `dh_strip` strips them, the rlibs (whose
/// metadata rustc reads) as they are. Left out: `lib/rustlib/src` (a link
/// into the cache's tree; `stage_sources` copies what it points at) and
/// `lib/rustlib/<host>/bin`, copies of Debian's own LLVM 14 tools (`llc`,
/// `llvm-objdump`, ...) that bootstrap puts there for rustup's
/// `llvm-tools` component and rustc never runs (Debian's rustc ships none
/// either; they are in `/usr/lib/llvm-14/bin`). Returns the host's ELF
/// files, for `dpkg-shlibdeps`.
fn stage_toolchain(tc: &Toolchain, prefix: &Path) -> Result<Vec<PathBuf>> {
    let mut host_elf = Vec::new();
    let bin = prefix.join("bin");
    fs::create_dir_all(&bin)?;
    for tool in ["rustc", "rustdoc", "pfe-check"] {
        let to = bin.join(tool);
        strip(&tc.dir.join("bin").join(tool), &to)?;
        host_elf.push(to);
    }
    let cargo = bin.join("cargo");
    fs::write(&cargo, build::cargo_wrapper(&format!("/{PREFIX}/bin")))?;
    build::set_executable(&cargo)?;
    let skip = [tc.dir.join("lib/rustlib/src"), tc.dir.join("lib/rustlib").join(HOST).join("bin")];
    copy_tree(&tc.dir.join("lib"), &prefix.join("lib"), &skip, &mut host_elf)?;
    Ok(host_elf)
}

/// Copies `from` to `to` recursively, leaving out `skip` and empty
/// directories; ELF files are stripped, and those of the host collected.
/// A symbolic link is refused: it would point back into the cache.
fn copy_tree(from: &Path, to: &Path, skip: &[PathBuf], host_elf: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if skip.contains(&path) {
            continue;
        }
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            bail!("{} is a symbolic link: the package would point back into the cache", path.display());
        } else if kind.is_dir() {
            copy_tree(&path, &target, skip, host_elf)?;
        } else {
            fs::create_dir_all(to)?;
            match elf_machine(&path)? {
                Some(machine) => {
                    strip(&path, &target)?;
                    if machine == EM_X86_64 {
                        host_elf.push(target);
                    }
                }
                None => {
                    fs::copy(&path, &target)
                        .with_context(|| format!("cannot copy {} to {}", path.display(), target.display()))?;
                }
            }
        }
    }
    Ok(())
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The ELF machine of `path`, or None if it is not an ELF file.
fn elf_machine(path: &Path) -> Result<Option<u16>> {
    use std::io::Read;
    let mut header = [0u8; 20];
    let mut file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if file.read(&mut header)? < header.len() || &header[..4] != b"\x7fELF" {
        return Ok(None);
    }
    // Little-endian (EI_DATA 1): every target of this toolchain.
    Ok(Some(u16::from_le_bytes([header[18], header[19]])))
}

/// `from` stripped into `to` as `dh_strip` does: shared objects lose their
/// unneeded symbols, executables their symbol table; `.comment` and
/// `.note` go. The `.rustc` metadata section of the Rust dylibs stays.
/// Shared objects are 0644 (as `dh_fixperms` leaves them), executables 0755.
fn strip(from: &Path, to: &Path) -> Result<()> {
    let machine = elf_machine(from)?.with_context(|| format!("{} is not an ELF file", from.display()))?;
    let program = match machine {
        EM_X86_64 => "strip",
        EM_AARCH64 => "aarch64-linux-gnu-strip",
        other => bail!("{} is for ELF machine {other}, neither x86_64 nor aarch64", from.display()),
    };
    let shared = from.extension().is_some_and(|e| e == "so");
    let mut command = Command::new(program);
    command.args(["--remove-section=.comment", "--remove-section=.note"]);
    if shared {
        command.arg("--strip-unneeded");
    }
    cmd::output(command.arg("-o").arg(to).arg(from))?;
    let mode = if shared { 0o644 } else { 0o755 };
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The sources of `library/` at the tree's HEAD (what the toolchain was
/// built from) as real files in `lib/rustlib/src/rust/library`, where rustc
/// 1.63 and kbuild (`RUST_LIB_SRC` defaults to it) look for them: what
/// upstream's rust-src component holds (`SOURCES_LEFT_OUT`, `VCS_FILES`).
fn stage_sources(ctx: &Ctx, prefix: &Path) -> Result<()> {
    let dest = prefix.join("lib/rustlib/src/rust");
    fs::create_dir_all(&dest)?;
    let tar = ctx.cache.join("deb/library.tar");
    let mut archive = git(&ctx.src());
    archive.args(["archive", "--format=tar", "-o"]).arg(&tar).args(["HEAD", "--", "library"]);
    for left_out in SOURCES_LEFT_OUT {
        archive.arg(format!(":(exclude){left_out}"));
    }
    for name in VCS_FILES {
        archive.arg(format!(":(exclude,glob)**/{name}"));
    }
    cmd::output(&mut archive)?;
    cmd::output(Command::new("tar").args(["--no-same-owner", "-xf"]).arg(&tar).arg("-C").arg(&dest))?;
    fs::remove_file(&tar)?;
    if !dest.join("library/core/src/lib.rs").is_file() {
        bail!("`git archive HEAD library` left no library/core/src/lib.rs in {}", dest.display());
    }
    Ok(())
}

/// `/usr/bin/<command>` as relative links into the toolchain: rustc and
/// rustdoc find their sysroot (and so their libraries) from their real path.
fn stage_commands(pkg: &Path) -> Result<()> {
    let bin = pkg.join("usr/bin");
    fs::create_dir_all(&bin)?;
    for (command, tool) in COMMANDS {
        std::os::unix::fs::symlink(format!("../lib/rustc-pfe/bin/{tool}"), bin.join(command))?;
    }
    Ok(())
}

/// `/usr/share/doc/rustc-pfe/{copyright,changelog.Debian.gz}` (the
/// changelog also as `debian/changelog` in `work`, for `dpkg-gencontrol`),
/// the man pages, the lintian overrides.
fn stage_docs(ctx: &Ctx, meta: &Meta, work: &Path) -> Result<()> {
    let src = ctx.src();
    let pkg = work.join("debian").join(PACKAGE);
    let doc = pkg.join("usr/share/doc").join(PACKAGE);
    fs::create_dir_all(&doc)?;
    let debian_copyright = fs::read_to_string(src.join("debian/copyright"))
        .with_context(|| format!("cannot read {}", src.join("debian/copyright").display()))?;
    let authors = cmd::output(git(&src).args(["log", "--format=%ad %an <%ae>", "--date=format:%Y", "base..HEAD"]))?;
    fs::write(doc.join("copyright"), copyright(&debian_copyright, &authors, &pfe_check_crates(ctx)?))?;
    let debian_changelog = fs::read_to_string(src.join("debian/changelog"))?;
    let changelog = changelog(meta, &date(meta.epoch, "-R")?, &debian_changelog);
    fs::write(work.join("debian/changelog"), &changelog)?;
    gzip(&changelog, &doc.join("changelog.Debian.gz"))?;

    let man = pkg.join("usr/share/man/man1");
    fs::create_dir_all(&man)?;
    let day = date(meta.epoch, "+%Y-%m-%d")?;
    for (name, page) in man_pages(meta, &day) {
        gzip(&page, &man.join(format!("{name}.1.gz")))?;
    }
    let help2man = cmd::output(
        Command::new("help2man")
            .env("SOURCE_DATE_EPOCH", meta.epoch.to_string())
            .args(["--no-info", "--section=1", "--source", &format!("rustc-pfe {}", meta.series)])
            .args(["--name", "audit patchable function entries in ELF objects, archives and executables"])
            .arg(pkg.join(PREFIX).join("bin/pfe-check")),
    )?;
    gzip(&help2man, &man.join("pfe-check.1.gz"))?;

    let overrides = pkg.join("usr/share/lintian/overrides");
    fs::create_dir_all(&overrides)?;
    fs::write(overrides.join(PACKAGE), lintian_overrides())?;
    Ok(())
}

/// `gzip -9n` of `text` into `path` (no name or time in the header).
fn gzip(text: &str, path: &Path) -> Result<()> {
    let plain = path.with_extension("");
    fs::write(&plain, text).with_context(|| format!("cannot write {}", plain.display()))?;
    cmd::output(Command::new("gzip").args(["-9nf"]).arg(&plain))?;
    Ok(())
}

/// Modes as `dh_fixperms` leaves them, whatever the umask: directories and
/// executables 0755, other files 0644.
fn fix_modes(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            fix_modes(&path)?;
        } else if kind.is_file() {
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            fs::set_permissions(&path, fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }))?;
        }
    }
    Ok(())
}

/// Every symbolic link in the package is relative and resolves inside it.
fn check_links(pkg: &Path) -> Result<()> {
    fn walk(root: &Path, dir: &Path) -> Result<()> {
        for entry in fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &path)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path)?;
                let resolved = fs::canonicalize(path.parent().unwrap_or(dir).join(&target)).ok();
                if target.is_absolute() || !resolved.is_some_and(|r| r.starts_with(root)) {
                    bail!("{} -> {}: a link that leaves the package", path.display(), target.display());
                }
            }
        }
        Ok(())
    }
    walk(&fs::canonicalize(pkg)?, pkg)
}

/// The crates statically linked into pfe-check, `name version (license)`,
/// as cargo resolves them for this checkout (the one `./x build` built it from).
fn pfe_check_crates(ctx: &Ctx) -> Result<Vec<String>> {
    let out = cmd::output(
        cmd::cargo()
            .args(["tree", "--offline", "--quiet", "-p", "pfe-check", "-e", "normal", "--target", HOST])
            .args(["--prefix", "none", "--format", "{p}|{l}", "--manifest-path"])
            .arg(ctx.root.join("Cargo.toml")),
    )?;
    let mut crates = BTreeSet::new();
    for line in out.lines() {
        let Some((package, license)) = line.trim_end_matches(" (*)").split_once('|') else { continue };
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else { continue };
        if name != "pfe-check" {
            crates.insert(format!("{name} {} ({})", version.trim_start_matches('v'), license.trim()));
        }
    }
    if crates.is_empty() {
        bail!("`cargo tree -p pfe-check` listed no crates");
    }
    Ok(crates.into_iter().collect())
}

/// Debian's rustc copyright file as it is, then a paragraph for what this
/// package adds: the series and pfe-check, with the crates linked into it.
fn copyright(debian: &str, authors: &str, crates: &[String]) -> String {
    let holders: BTreeSet<&str> = authors.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut text = debian.trim_end().to_string();
    text.push_str("\n\nFiles: rustc-pfe/*\nCopyright:");
    for (i, holder) in holders.iter().enumerate() {
        text.push_str(if i == 0 { " " } else { "\n           " });
        text.push_str(holder);
    }
    text.push_str("\nLicense: MIT or Apache-2.0\nComment:");
    let comment = format!(
        "The rustc-pfe patch series (patchable function entries), applied on top \
         of the source above to build this compiler, and pfe-check \
         (/{PREFIX}/bin/pfe-check), from the same project. pfe-check statically \
         links these crates from crates.io, each under the license named (the \
         texts are in the License paragraphs above):"
    );
    for line in wrap(&comment, 78) {
        text.push_str(&format!("\n {line}"));
    }
    for krate in crates {
        text.push_str(&format!("\n   {krate}"));
    }
    text.push('\n');
    text
}

/// The package's changelog: an entry for this build of the series above
/// Debian's rustc changelog, whose history it continues.
fn changelog(meta: &Meta, date: &str, debian: &str) -> String {
    let mut text = format!("{PACKAGE} ({}) bookworm; urgency=medium\n\n", meta.version);
    let mut item = |line: String, indent: &str| {
        let bullet = if indent.len() > 2 { "- " } else { "* " };
        for (i, part) in wrap(&line, 78 - indent.len() - 2).iter().enumerate() {
            let lead = if i == 0 { format!("{indent}{bullet}") } else { format!("{indent}  ") };
            text.push_str(&format!("{lead}{part}\n"));
        }
    };
    item(
        format!(
            "Debian's rustc {} with the rustc-pfe series {} ({} patches) applied, \
             stage1 built against LLVM 14 by `./x build`:",
            meta.base,
            meta.series,
            meta.patches.len()
        ),
        "  ",
    );
    for patch in &meta.patches {
        item(patch.clone(), "    ");
    }
    item(
        format!(
            "Packaged by `./x deb`: the toolchain in /{PREFIX}, the commands \
             rustc-pfe, rustdoc-pfe, cargo-pfe and pfe-check in /usr/bin."
        ),
        "  ",
    );
    text.push_str(&format!("\n -- {}  {date}\n\n", meta.maintainer));
    text.push_str(debian.trim_end());
    text.push('\n');
    text
}

/// `text` cut into lines of at most `width` characters at spaces.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `debian/control` for `dpkg-gencontrol`.
fn control_source(meta: &Meta) -> String {
    let mut text = format!(
        "Source: {PACKAGE}\nSection: devel\nPriority: optional\nMaintainer: {}\n\
         Rules-Requires-Root: no\n\nPackage: {PACKAGE}\nArchitecture: amd64\n\
         Depends: ${{shlibs:Depends}}, {DEPENDS}\nSuggests: {SUGGESTS}\n\
         Description: Rust compiler 1.63 with patchable function entries\n",
        meta.maintainer
    );
    let paragraphs = [
        format!(
            "Debian's rustc {} (LLVM 14) with the rustc-pfe patch series {} applied: \
             -Z patchable-function-entry=N,M and the #[patchable_function_entry] \
             attribute emit the nop pads and __patchable_function_entries records \
             of GCC's and Clang's -fpatchable-function-entry, which ftrace, live \
             patching and call padding rewrite at run time; also \
             -Z min-function-alignment, and -Z instrument-mcount once per function.",
            meta.base, meta.series
        ),
        format!(
            "It installs beside Debian's rustc: rustc-pfe, rustdoc-pfe, cargo-pfe \
             (Debian's cargo 1.65 running this compiler) and pfe-check, which audits \
             the pads in ELF objects, with the toolchain in /{PREFIX}: the standard \
             library for x86_64 and aarch64, and the library sources that the Linux \
             kernel's build compiles core from."
        ),
    ];
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            text.push_str(" .\n");
        }
        for line in wrap(paragraph, 79) {
            text.push_str(&format!(" {line}\n"));
        }
    }
    text
}

/// `debian/control` in `work` (the changelog is there already), the
/// dependencies `dpkg-shlibdeps` finds in the host's ELF files, then
/// `DEBIAN/control` (`dpkg-gencontrol`, which also sums the installed size)
/// and `DEBIAN/md5sums` (what `dpkg --verify` checks).
fn control(work: &Path, meta: &Meta, host_elf: &[PathBuf]) -> Result<()> {
    fs::write(work.join("debian/control"), control_source(meta))?;
    let relative: Vec<&Path> = host_elf.iter().map(|p| p.strip_prefix(work).unwrap_or(p)).collect();
    cmd::output(Command::new("dpkg-shlibdeps").current_dir(work).arg("-Tdebian/substvars").args(&relative))?;
    cmd::output(
        Command::new("dpkg-gencontrol")
            .current_dir(work)
            .args([&format!("-p{PACKAGE}"), &format!("-Pdebian/{PACKAGE}"), "-Tdebian/substvars"]),
    )?;
    let pkg = work.join("debian").join(PACKAGE);
    fs::set_permissions(pkg.join("DEBIAN/control"), fs::Permissions::from_mode(0o644))?;
    let mut files = Vec::new();
    list_files(&pkg, &pkg, &mut files)?;
    files.retain(|f| !f.starts_with("DEBIAN"));
    files.sort();
    let sums = cmd::output(Command::new("md5sum").current_dir(&pkg).arg("--").args(&files))?;
    fs::write(pkg.join("DEBIAN/md5sums"), sums)?;
    fs::set_permissions(pkg.join("DEBIAN/md5sums"), fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Regular files under `dir`, relative to `root`.
fn list_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(root, &entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path().strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// The overrides file: each tag with its reason as a comment.
fn lintian_overrides() -> String {
    let mut text = String::from("# Written by rustc-pfe's `./x deb` (xtask/src/deb.rs, LINTIAN_OVERRIDES).\n");
    for (tag, context, why) in LINTIAN_OVERRIDES {
        text.push('\n');
        for line in wrap(why, 76) {
            text.push_str(&format!("# {line}\n"));
        }
        text.push_str(&format!("{PACKAGE} binary: {tag} {context}\n"));
    }
    text
}

/// lintian on the package: errors and warnings are shown one by one and
/// fail (the accepted ones are overridden in the package, with why, so what
/// is left is new); informational tags are counted.
fn lintian(deb: &Path) -> Result<()> {
    let step = Step::start("lintian");
    let mut command = Command::new("lintian");
    command.args(["--display-info", "--fail-on", "error,warning"]).arg(deb);
    let out = command.output().with_context(|| format!("cannot start `{}`", cmd::show(&command)))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut infos: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["I:", _, tag, ..] => *infos.entry(tag).or_default() += 1,
            _ => println!("    {line}"),
        }
    }
    for (tag, count) in &infos {
        println!("    I: {tag} (informational, {count} times)");
    }
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): lintian found the errors or warnings above\n{}",
            cmd::show(&command),
            out.status,
            cmd::tail(&String::from_utf8_lossy(&out.stderr), 20)
        );
    }
    println!(
        "    no errors or warnings; {} tags overridden, each with why, in /usr/share/lintian/overrides/{PACKAGE}",
        LINTIAN_OVERRIDES.len()
    );
    step.done();
    Ok(())
}

/// The man pages of the three commands that wrap the toolchain (pfe-check's
/// comes from its `--help`, through help2man).
fn man_pages(meta: &Meta, day: &str) -> Vec<(&'static str, String)> {
    let head = |name: &str, what: &str| {
        format!(
            ".TH {} 1 \"{day}\" \"rustc-pfe {}\" \"User Commands\"\n.SH NAME\n{name} \\- {what}\n",
            name.to_uppercase(),
            meta.series
        )
    };
    let rustc = format!(
        "{}.SH SYNOPSIS\n.B rustc\\-pfe\n[\\fIOPTIONS\\fR] \\fIINPUT\\fR\n\
         .SH DESCRIPTION\n\
         \\fBrustc\\-pfe\\fR is Debian's \\fBrustc\\fR {} (LLVM 14) with the rustc\\-pfe patch \
         series {} applied. It takes the options of \\fBrustc\\fR(1); it is a nightly\\-channel \
         build, so \\fB\\-Z\\fR options and \\fB#![feature(...)]\\fR work. The series adds:\n\
         .TP\n.BI \"\\-Z patchable\\-function\\-entry=\" total \\fR[\\fP, prefix \\fR]\\fP\n\
         \\fItotal\\fR nops for every function, \\fIprefix\\fR of them before its symbol, and a \
         record of each pad in the ELF section \\fB__patchable_function_entries\\fR, as GCC's and \
         Clang's \\fB\\-fpatchable\\-function\\-entry\\fR emit them for ftrace, live patching \
         and call padding. Targets LLVM 14 cannot pad are refused.\n\
         .TP\n.B #[patchable_function_entry(prefix_nops = \\fIm\\fP, entry_nops = \\fIn\\fP)]\n\
         The same for one function, behind \\fB#![feature(patchable_function_entry)]\\fR; it wins \
         over the flag; (0, 0) leaves the function unpadded (the kernel's notrace where its ftrace \
         uses these entries, as on arm64).\n\
         .TP\n.BI \"\\-Z min\\-function\\-alignment=\" N\n\
         Aligns every function to \\fIN\\fR bytes, as \\fB\\-falign\\-functions\\fR does.\n\
         .TP\n.B \\-Z instrument\\-mcount\n\
         Calls \\fBmcount\\fR once in every function, after all inlining.\n\
         .SH FILES\n.TP\n.I /{PREFIX}\n\
         The toolchain: \\fBrustc\\-pfe\\fR finds it from its own path. \\fIlib/rustlib\\fR holds \
         the standard library for x86_64\\-unknown\\-linux\\-gnu and aarch64\\-unknown\\-linux\\-gnu \
         (linking aarch64 programs needs \\fBgcc\\-aarch64\\-linux\\-gnu\\fR and \
         \\fB\\-C linker=aarch64\\-linux\\-gnu\\-gcc\\fR) and, in \\fIsrc/rust/library\\fR, the \
         library sources the Linux kernel's build compiles \\fBcore\\fR from.\n\
         .SH EXAMPLES\n.nf\n\
         rustc\\-pfe \\-Zpatchable\\-function\\-entry=16,16 \\-O \\-\\-emit=obj foo.rs\n\
         pfe\\-check \\-\\-expect 16,16 foo.o\n\
         make LLVM=\\-14 RUSTC=/usr/bin/rustc\\-pfe KRUSTFLAGS=\\-Zpatchable\\-function\\-entry=16,16\n\
         .fi\n\
         .SH SEE ALSO\n\\fBrustc\\fR(1), \\fBrustdoc\\-pfe\\fR(1), \\fBcargo\\-pfe\\fR(1), \\fBpfe\\-check\\fR(1)\n",
        head("rustc-pfe", "Rust compiler 1.63 with patchable function entries"),
        meta.base,
        meta.series
    );
    let rustdoc = format!(
        "{}.SH SYNOPSIS\n.B rustdoc\\-pfe\n[\\fIOPTIONS\\fR] \\fIINPUT\\fR\n\
         .SH DESCRIPTION\n\
         \\fBrustdoc\\-pfe\\fR is the \\fBrustdoc\\fR(1) of \\fBrustc\\-pfe\\fR(1): it documents \
         crates and runs their documentation tests with that compiler, whose rlibs Debian's \
         \\fBrustdoc\\fR cannot read. It takes the options of \\fBrustdoc\\fR(1).\n\
         .SH SEE ALSO\n\\fBrustdoc\\fR(1), \\fBrustc\\-pfe\\fR(1), \\fBcargo\\-pfe\\fR(1)\n",
        head("rustdoc-pfe", "the documentation generator of rustc-pfe")
    );
    let cargo = format!(
        "{}.SH SYNOPSIS\n.B cargo\\-pfe\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n\
         .SH DESCRIPTION\n\
         \\fBcargo\\-pfe\\fR runs Debian's \\fBcargo\\fR(1) 1.65 with \\fBRUSTC\\fR and \
         \\fBRUSTDOC\\fR set to \\fI/{PREFIX}/bin/rustc\\fR and \\fIrustdoc\\fR (only when they \
         are not set already). It takes the commands and options of \\fBcargo\\fR(1).\n\
         .PP\n\
         It reaches crates.io through the sparse protocol, which cargo 1.65 has only as an \
         unstable feature: it sets \\fBCARGO_UNSTABLE_SPARSE_REGISTRY=true\\fR, \
         \\fBCARGO_REGISTRIES_CRATES_IO_PROTOCOL=sparse\\fR and \
         \\fB__CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=nightly\\fR. The last one makes that \
         cargo behave as a nightly cargo: \\fBevery unstable cargo feature is unlocked\\fR for \
         whoever runs it (\\fB\\-Z\\fR flags on cargo's command line, \
         \\fBcargo\\-features\\fR in manifests, the \\fB[unstable]\\fR configuration table, \
         \\fBCARGO_UNSTABLE_*\\fR variables), not only the sparse registry. Cargo 1.65 has no \
         narrower switch. To run cargo without it, run \\fB/usr/bin/cargo\\fR with \
         \\fBRUSTC=/{PREFIX}/bin/rustc\\fR where cargo's git index of crates.io is reachable.\n\
         .SH EXAMPLES\n.nf\n\
         RUSTFLAGS=\\-Zpatchable\\-function\\-entry=16,16 cargo\\-pfe build \\-\\-release\n\
         cargo\\-pfe test\n\
         .fi\n\
         .SH SEE ALSO\n\\fBcargo\\fR(1), \\fBrustc\\-pfe\\fR(1), \\fBrustdoc\\-pfe\\fR(1)\n",
        head("cargo-pfe", "Debian's cargo with the rustc-pfe compiler")
    );
    vec![("rustc-pfe", rustc), ("rustdoc-pfe", rustdoc), ("cargo-pfe", cargo)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            base: "1.63.0+dfsg1-2".into(),
            series: "4fa91a44bf55".into(),
            version: "1.63.0+dfsg1-2+pfe.4fa91a44bf55".into(),
            patches: vec![
                "rustc_target: decide where LLVM 14 pads functions from the LLVM triple".into(),
                "rustc_session: add -Z patchable-function-entry=total_nops[,prefix_nops] and a long tail to wrap".into(),
            ],
            maintainer: "rustc-pfe developers <dev@rustc-pfe.invalid>".into(),
            epoch: 0,
        }
    }

    #[test]
    fn the_base_version_comes_from_the_changelogs_first_line() {
        let text = "rustc (1.63.0+dfsg1-2) unstable; urgency=medium\n\n  * fix\n";
        assert_eq!(changelog_version(text).as_deref(), Some("1.63.0+dfsg1-2"));
        assert_eq!(changelog_version("rustc () unstable"), None);
        assert_eq!(changelog_version(""), None);
    }

    #[test]
    fn the_changelog_entry_names_the_series_and_continues_debians() {
        let debian = "rustc (1.63.0+dfsg1-2) unstable; urgency=medium\n\n  * fix\n\n -- A <a@b.c>  Sat, 14 Jan 2023 09:38:46 +0100\n";
        let text = changelog(&meta(), "Sat, 05 Dec 2026 08:17:00 +0000", debian);
        assert_eq!(text.lines().next(), Some("rustc-pfe (1.63.0+dfsg1-2+pfe.4fa91a44bf55) bookworm; urgency=medium"));
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("series 4fa91a44bf55 (2 patches)"), "{text}");
        assert!(text.contains("\n    - rustc_target: decide where LLVM 14 pads functions from the LLVM triple\n"), "{text}");
        assert!(text.contains(
            " -- rustc-pfe developers <dev@rustc-pfe.invalid>  Sat, 05 Dec 2026 08:17:00 +0000\n\nrustc (1.63.0+dfsg1-2)"
        ));
        for line in text.lines().filter(|l| l.starts_with("  ")) {
            assert!(line.len() <= 80, "too long for a changelog: {line:?}");
        }
    }

    #[test]
    fn the_control_file_is_what_dpkg_gencontrol_reads() {
        let text = control_source(&meta());
        let (source, binary) = text.split_once("\n\n").expect("two stanzas");
        assert!(source.contains("Maintainer: rustc-pfe developers <dev@rustc-pfe.invalid>"));
        assert!(!text.contains("Homepage"));
        assert!(binary.contains("Depends: ${shlibs:Depends}, cargo (>= 0.66.0~~)"));
        let description: Vec<&str> = binary.lines().skip_while(|l| !l.starts_with("Description:")).collect();
        assert!(description[0].len() <= 80, "{}", description[0]);
        for line in &description[1..] {
            assert!(line.starts_with(' ') && line.len() <= 80, "{line:?}");
        }
        assert!(description.contains(&" ."));
    }

    #[test]
    fn the_version_is_one_dpkg_accepts() {
        // Debian policy 5.6.12: upstream [A-Za-z0-9.+~-], revision [A-Za-z0-9.+~].
        let version = meta().version;
        let (upstream, revision) = version.rsplit_once('-').expect("a revision");
        assert!(upstream.starts_with(|c: char| c.is_ascii_digit()));
        assert!(upstream.chars().all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c)));
        assert!(revision.chars().all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c)));
    }

    #[test]
    fn the_copyright_file_starts_as_debians_and_credits_what_is_added() {
        let debian = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: rust\n";
        let authors = "2022 rustc-pfe developers <dev@rustc-pfe.invalid>\n2022 rustc-pfe developers <dev@rustc-pfe.invalid>\n";
        let text = copyright(debian, authors, &["object 0.36.7 (Apache-2.0 OR MIT)".into()]);
        assert!(text.starts_with(debian));
        assert!(text.contains(
            "\n\nFiles: rustc-pfe/*\nCopyright: 2022 rustc-pfe developers <dev@rustc-pfe.invalid>\nLicense: MIT or Apache-2.0\n"
        ));
        assert!(text.contains("\n   object 0.36.7 (Apache-2.0 OR MIT)\n"));
        for line in text.lines().skip_while(|l| !l.starts_with("Comment:")).skip(1) {
            assert!(line.starts_with(' ') && line.len() <= 80, "{line:?}");
        }
    }

    #[test]
    fn the_packaged_cargo_runs_the_packaged_compiler_with_the_toolchains_settings() {
        let packaged = build::cargo_wrapper("/usr/lib/rustc-pfe/bin");
        assert!(packaged.contains(": \"${RUSTC:=/usr/lib/rustc-pfe/bin/rustc}\""));
        assert!(packaged.contains(": \"${RUSTDOC:=/usr/lib/rustc-pfe/bin/rustdoc}\""));
        let toolchain = build::cargo_wrapper("$(dirname \"$(readlink -f \"$0\")\")");
        let settings = |text: &str| {
            text.lines().filter(|l| l.starts_with("export ") || l.starts_with("exec ")).map(String::from).collect::<Vec<_>>()
        };
        assert_eq!(settings(&packaged), settings(&toolchain));
    }

    #[test]
    fn every_command_has_a_man_page() {
        let pages = man_pages(&meta(), "2026-12-05");
        for (command, _) in COMMANDS {
            assert!(*command == "pfe-check" || pages.iter().any(|(name, _)| name == command), "{command}");
        }
        for (name, page) in &pages {
            assert!(page.starts_with(&format!(".TH {} 1 \"2026-12-05\"", name.to_uppercase())), "{name}");
            assert!(page.contains(".SH NAME\n") && page.contains(".SH SEE ALSO\n"), "{name}");
        }
    }

    #[test]
    fn every_override_names_its_files_and_says_why() {
        let text = lintian_overrides();
        for (tag, context, why) in LINTIAN_OVERRIDES {
            assert!(context.contains('[') && context.ends_with(']'), "{tag}: no file pattern");
            assert!(why.len() > 40, "{tag}: no reason");
            assert!(text.contains(&format!("\nrustc-pfe binary: {tag} {context}\n")), "{tag}");
        }
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 6), Vec::<String>::new());
    }
}
