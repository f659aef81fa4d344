//! `./x source-package`: Debian's rustc source package with the series in
//! it, made as a Debian packager makes one and with Debian's own tools: the
//! pinned `.dsc` unpacked by `dpkg-source -x` (which applies Debian's
//! patches), the series' patches copied into `debian/patches/` and listed
//! after Debian's, applied with quilt `--fuzz=0` as dpkg-source applies
//! them, a changelog entry with a local version, a version line of the
//! compiler's own (`debian/config.toml.in`), then `dpkg-source -b`, format
//! 3.0 (quilt), reusing the pinned orig tarball. The result is in
//! `$RUSTC_PFE_HOME/source-package/`, with the unpacked tree it was made
//! from (every patch applied, ready for `dpkg-buildpackage`).
//!
//! It never builds the compiler, and it changes nothing else of Debian's
//! packaging: `debian/rules`, and with it the package's test step, stays
//! Debian's. `--check` unpacks the result as a user would and checks it;
//! `--build` builds the binary packages with `dpkg-buildpackage -B`
//! (`binary.rs`), and `--chroot` installs them into a fresh minimal Debian
//! 12 and checks them there (`chroot.rs`).

use crate::build::record_time;
use crate::cmd::{self, Step};
use crate::deb::wrap;
use crate::deps;
use crate::fetch::{self, DEBIAN_TARBALL, ORIG_TARBALL};
use crate::paths::Ctx;
use crate::series;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod binary;
mod chroot;

#[derive(Default)]
pub struct Args {
    /// Unpack the package made as a user would and check it.
    pub check: bool,
    /// Build the binary packages with `dpkg-buildpackage -B`.
    pub build: bool,
    /// With `--build`: run Debian's test step too (no `nocheck`).
    pub with_tests: bool,
    /// Run the series' tests in the last build's tree, as Debian's test
    /// step runs tests.
    pub series_tests: bool,
    /// Install the last build's packages into a fresh minimal Debian 12
    /// chroot and check them there.
    pub chroot: bool,
}

/// What this command runs: `dpkg-source` and `dpkg-parsechangelog`
/// (dpkg-dev), quilt, `patch` (dpkg-source applies patches with it), xz
/// (the tarballs), m4 (`--check` expands `debian/config.toml.in` as
/// `debian/rules` does). No devscripts: the changelog entry is written
/// here, in the form `dch --local` gives it, and `dpkg-parsechangelog`
/// reads it back.
pub const TOOLS: &[&str] = &["dpkg-dev", "quilt", "patch", "xz-utils", "m4"];

/// The source package.
const SOURCE: &str = "rustc";

/// The local part of the version, as `dch --local pfe` makes it: Debian's
/// `1.63.0+dfsg1-2` becomes `1.63.0+dfsg1-2pfe1`, which dpkg sorts after
/// `-2` and before Debian 12's next upload of the same upstream version,
/// `-2+deb12u1` (a letter sorts before `+`). `+pfe1` would sort after that
/// security upload and hold it back on every machine with this package.
/// A different series on the same base needs the next number.
const LOCAL: &str = "pfe1";

/// What Debian 12's security and point releases append to the revision of
/// the version they update (`-2+deb12u1`): our version must sort below it.
const STABLE_UPDATE: &str = "+deb12u1";

/// The changelog entry's distribution: `bookworm`, the release the package
/// is built for and installed on, as for any local build that is used.
/// `UNRELEASED` marks an entry still being edited (`dch` writes it until
/// `dch --release`), and builders such as sbuild take the chroot to build
/// in from this field when not told otherwise; there is no UNRELEASED one.
const DISTRIBUTION: &str = "bookworm";

/// The name in the changelog trailer; the address is the one of the series'
/// patches' `From:`, which is none (`<>`: the project has no mailbox).
const MAINTAINER_NAME: &str = "rustc-pfe developers";

/// Everything the package's new texts are made of.
struct Meta {
    /// Debian's version of the pinned source package, `1.63.0+dfsg1-2`.
    base: String,
    /// `1.63.0+dfsg1-2pfe1`.
    version: String,
    /// The series id: the first 12 digits of the driver's digest of
    /// `patches/series` and the patches it lists (`series::digest`).
    series: String,
    /// The series' patches: file name and subject, in order.
    patches: Vec<(String, String)>,
    /// `rustc-pfe developers <address>` (the address empty: `<>`).
    maintainer: String,
    /// The newest patch's `Date:`, for the changelog (RFC 2822) and as
    /// `SOURCE_DATE_EPOCH`, so the entry does not change from run to run.
    date: String,
    epoch: u64,
}

impl Meta {
    /// `[rust] description` in bootstrap's config: bootstrap's
    /// `rust_version()` appends ` (<description>)` to the version the
    /// compiler prints.
    fn description(&self) -> String {
        format!("rustc-pfe {}", self.series)
    }
    /// What the compiler prints first for `rustc -vV`: Debian builds the
    /// stable channel, whose version is the bare release, and disables
    /// bootstrap's git information (`d-bootstrap-disable-git.patch`), so no
    /// commit hash or date comes before the description.
    fn version_line(&self) -> String {
        format!("rustc {} ({})", release(&self.base), self.description())
    }
    fn upstream(&self) -> &str {
        upstream(&self.base)
    }
    fn dsc_name(&self) -> String {
        format!("{SOURCE}_{}.dsc", self.version)
    }
    fn debian_tarball_name(&self) -> String {
        format!("{SOURCE}_{}.debian.tar.xz", self.version)
    }
    /// The directory `dpkg-source -x` unpacks to.
    fn tree_name(&self) -> String {
        format!("{SOURCE}-{}", self.upstream())
    }
}

/// `1.63.0+dfsg1` from `1.63.0+dfsg1-2`.
fn upstream(version: &str) -> &str {
    version.rsplit_once('-').map_or(version, |(upstream, _)| upstream)
}

/// `1.63.0` from `1.63.0+dfsg1-2`: the release `src/version` holds.
fn release(version: &str) -> &str {
    let upstream = upstream(version);
    upstream.split_once('+').map_or(upstream, |(release, _)| release)
}

/// The local version for Debian's `base`.
fn local_version(base: &str) -> String {
    format!("{base}{LOCAL}")
}

/// Fails unless `version` sorts after `base` and before `base`'s next
/// Debian 12 update, by dpkg's own comparison.
fn check_version_order(base: &str, version: &str) -> Result<()> {
    let update = format!("{base}{STABLE_UPDATE}");
    if !deps::version_lt(base, version)? {
        bail!("version {version} does not sort after Debian's {base} (dpkg --compare-versions)");
    }
    if !deps::version_lt(version, &update)? {
        bail!("version {version} does not sort before Debian 12's update {update} (dpkg --compare-versions)");
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let started = Instant::now();
    fetch::run(ctx)?;
    deps::install("install the source packaging tools", TOOLS)?;
    let meta = meta(ctx)?;
    check_version_order(&meta.base, &meta.version)?;
    let out = ctx.cache.join("source-package");
    let dsc = build(ctx, &meta, &out)?;
    println!("./x source-package: done in {}", cmd::elapsed(started.elapsed()));
    for file in [dsc.clone(), out.join(meta.debian_tarball_name()), out.join(ORIG_TARBALL)] {
        let size = fs::metadata(&file).with_context(|| format!("{} is missing", file.display()))?.len();
        println!("    {} ({})", file.display(), bytes(size));
    }
    println!("    its rustc prints `{}` first for `rustc -vV`", meta.version_line());
    if args.check {
        let started = Instant::now();
        check(ctx, &meta, &dsc)?;
        record_time(ctx, "source-package-check", started)?;
        println!("./x source-package --check: done in {}", cmd::elapsed(started.elapsed()));
    }
    if args.build {
        binary::run(ctx, &meta, &dsc, args.with_tests)?;
    }
    if args.series_tests {
        binary::series_tests(ctx, &meta)?;
    }
    if args.chroot {
        chroot::run(ctx, &meta)?;
    }
    Ok(())
}

/// `12.3 MB`, `92 kB`.
fn bytes(size: u64) -> String {
    if size >= 1_000_000 {
        format!("{:.1} MB", size as f64 / 1e6)
    } else {
        format!("{:.0} kB", (size as f64 / 1e3).max(1.0))
    }
}

/// The pinned `.dsc`'s name, from `pins/base.sha256`.
fn pinned_dsc(ctx: &Ctx) -> Result<String> {
    let pins = fetch::pins(ctx)?;
    match pins.iter().filter(|(name, _)| name.ends_with(".dsc")).collect::<Vec<_>>()[..] {
        [(name, _)] => Ok(name.clone()),
        _ => bail!("pins/base.sha256 must pin exactly one .dsc"),
    }
}

/// The value of a one-line field of a `.dsc` (signed or not).
fn dsc_field<'a>(dsc: &'a str, name: &str) -> Option<&'a str> {
    dsc.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// `(sha256, size, file)` of a `.dsc`'s `Checksums-Sha256:` field.
fn dsc_sha256(dsc: &str) -> Vec<(String, String, String)> {
    let mut lines = dsc.lines().skip_while(|l| !l.starts_with("Checksums-Sha256:")).skip(1);
    let mut files = Vec::new();
    while let Some(line) = lines.next().filter(|l| l.starts_with(' ')) {
        if let [sum, size, name] = line.split_whitespace().collect::<Vec<_>>()[..] {
            files.push((sum.to_string(), size.to_string(), name.to_string()));
        }
    }
    files
}

fn meta(ctx: &Ctx) -> Result<Meta> {
    let dsc_path = ctx.downloads().join(pinned_dsc(ctx)?);
    let dsc = fs::read_to_string(&dsc_path).with_context(|| format!("cannot read {}", dsc_path.display()))?;
    let base = dsc_field(&dsc, "Version").with_context(|| format!("no Version: in {}", dsc_path.display()))?;
    let mut patches = Vec::new();
    let mut newest: Option<(u64, String, String)> = None;
    for entry in series::read(&ctx.patches())? {
        let path = ctx.patches().join(&entry.name);
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let fields = series::dep3_fields(&text);
        let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_string());
        let subject = series::message(&text).map(|m| m.subject).unwrap_or_default();
        let from = field("From").with_context(|| format!("{}: no From:", entry.name))?;
        let date = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Date: "))
            .with_context(|| format!("{}: no Date:", entry.name))?;
        let epoch: u64 = date_output(date, "+%s")?.parse().with_context(|| format!("{}: Date: {date}", entry.name))?;
        if newest.as_ref().map_or(true, |(e, _, _)| epoch >= *e) {
            newest = Some((epoch, date.to_string(), from));
        }
        patches.push((entry.name, subject));
    }
    let Some((epoch, date, from)) = newest else { bail!("patches/series lists no patch") };
    let address = from.rsplit_once('<').and_then(|(_, a)| a.strip_suffix('>')).unwrap_or(&from).trim().to_string();
    Ok(Meta {
        version: local_version(base),
        base: base.to_string(),
        series: series::digest(&ctx.patches())?[..12].to_string(),
        patches,
        maintainer: format!("{MAINTAINER_NAME} <{address}>"),
        date: date_output(&date, "-R")?,
        epoch,
    })
}

/// `date -u -d DATE FORMAT`.
fn date_output(date: &str, format: &str) -> Result<String> {
    Ok(cmd::output(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", date, format]))?.trim().to_string())
}

/// The changelog entry on top of Debian's.
fn changelog_entry(meta: &Meta) -> String {
    let mut text = format!("{SOURCE} ({}) {DISTRIBUTION}; urgency=medium\n\n", meta.version);
    let mut item = |line: &str, indent: &str| {
        let bullet = if indent.len() > 2 { "- " } else { "* " };
        for (i, part) in wrap(line, 78 - indent.len() - 2).iter().enumerate() {
            let lead = if i == 0 { format!("{indent}{bullet}") } else { format!("{indent}  ") };
            text.push_str(&format!("{lead}{part}\n"));
        }
    };
    item(
        &format!(
            "Local build of Debian's rustc {} with the rustc-pfe patch series \
             (patchable function entries) {}: the first 12 digits of the SHA-256 \
             that its driver computes over patches/series and the patches listed there.",
            meta.base, meta.series
        ),
        "  ",
    );
    item(&format!("debian/patches: the series' {} patches, after Debian's, in its order:", meta.patches.len()), "  ");
    for (_, subject) in &meta.patches {
        item(subject, "    ");
    }
    item(
        &format!(
            "debian/config.toml.in: [rust] description = \"{}\", so that the compiler's \
             version line is \"{}\", not Debian's \"rustc {}\": cargo decides from \
             rustc -vV whether to rebuild, and must not reuse what Debian's rustc built.",
            meta.description(),
            meta.version_line(),
            release(&meta.base)
        ),
        "  ",
    );
    text.push_str(&format!("\n -- {}  {}\n", meta.maintainer, meta.date));
    text
}

/// `debian/config.toml.in` with `description = "..."` as the first line of
/// its `[rust]` table.
fn with_description(config: &str, description: &str) -> Result<String> {
    if config.lines().any(|l| l.trim_start().starts_with("description")) {
        bail!("debian/config.toml.in already sets a description");
    }
    // m4 reads this file (its quotes are ` and ') and then TOML: no quotes
    // or backslashes. `--check` expands the file with m4 as debian/rules
    // does and finds the line unchanged.
    if description.contains(['`', '\'', '"', '\\']) {
        bail!("a description for debian/config.toml.in cannot have quotes or backslashes: {description}");
    }
    let mut out = String::new();
    let mut found = false;
    for line in config.split_inclusive('\n') {
        out.push_str(line);
        if line.trim_end() == "[rust]" && !found {
            found = true;
            out.push_str(&format!("description = \"{description}\"\n"));
        }
    }
    if !found {
        bail!("debian/config.toml.in has no [rust] table");
    }
    Ok(out)
}

/// The patch names of a quilt series file (comments, blank lines and
/// options after a name left out).
fn active(series: &str) -> Vec<String> {
    series
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// Debian's `debian/patches/series` with ours after it.
fn series_with_ours(debian: &str, meta: &Meta) -> String {
    let mut text = debian.trim_end().to_string();
    text.push_str(&format!(
        "\n\n# rustc-pfe, series {}: patchable function entries. Made against the\n\
         # tree with all of Debian's patches above applied, so they come last.\n",
        meta.series
    ));
    for (name, _) in &meta.patches {
        text.push_str(name);
        text.push('\n');
    }
    text
}

/// The patches `dpkg-source -x` applied, in order, from its messages
/// (`dpkg-source: info: applying NAME`).
fn applied_by_dpkg_source(log: &str) -> Vec<String> {
    log.lines().filter_map(|l| l.strip_prefix("dpkg-source: info: applying ")).map(|n| n.trim().to_string()).collect()
}

/// What the package is made of; it is current when this is.
fn key(ctx: &Ctx, meta: &Meta) -> Result<String> {
    let pins: Vec<String> = fetch::pins(ctx)?.into_iter().map(|(name, sum)| format!("{sum} {name}")).collect();
    let code = fetch::sha256(&ctx.root.join("xtask/src/source_package/mod.rs"))?;
    let entry = fetch::sha256_of(changelog_entry(meta).as_bytes())?;
    Ok(format!(
        "{}\nseries {}\nsource_package.rs {code}\nchangelog-entry {entry}\n",
        pins.join("\n"),
        series::digest(&ctx.patches())?
    ))
}

/// Makes the source package in `out` (unless it is current) and returns
/// its `.dsc`.
fn build(ctx: &Ctx, meta: &Meta, out: &Path) -> Result<PathBuf> {
    let dsc = out.join(meta.dsc_name());
    let tarball = out.join(meta.debian_tarball_name());
    let key = key(ctx, meta)?;
    let stamp = ctx.state().join("source-package");
    let name = format!("make the source package {SOURCE} {}", meta.version);
    if dsc.is_file() && tarball.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&*key) {
        Step::skip(&name, "made from this series and source package");
        return Ok(dsc);
    }
    fs::remove_file(&stamp).ok();
    let step = Step::start(&name);
    let started = Instant::now();
    fs::create_dir_all(out)?;
    let tree = out.join(meta.tree_name());
    if tree.exists() {
        println!("    deleting the tree of the last build, {}", tree.display());
        fs::remove_dir_all(&tree)?;
    }
    // One package in the directory: the orig tarball (a hard link to the
    // pinned one; dpkg-source takes it from the current directory) and
    // this version's files.
    for entry in fs::read_dir(out)?.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && file.starts_with(&format!("{SOURCE}_")) {
            fs::remove_file(entry.path())?;
        }
    }
    let orig = out.join(ORIG_TARBALL);
    fs::hard_link(ctx.downloads().join(ORIG_TARBALL), &orig)
        .or_else(|_| fs::copy(ctx.downloads().join(ORIG_TARBALL), &orig).map(|_| ()))
        .with_context(|| format!("cannot link {} into {}", ORIG_TARBALL, out.display()))?;

    cmd::run_logged(
        Command::new("dpkg-source")
            .env("LC_ALL", "C")
            .arg("-x")
            .arg(ctx.downloads().join(pinned_dsc(ctx)?))
            .arg(meta.tree_name())
            .current_dir(out),
        "dpkg-source -x (Debian's patches applied)",
        &ctx.logs().join("source-package-unpack.log"),
        None,
    )?;
    add_patches(ctx, meta, &tree)?;

    let changelog_path = tree.join("debian/changelog");
    let debian_changelog = fs::read_to_string(&changelog_path)?;
    let top = debian_changelog.lines().next().unwrap_or("");
    if !top.starts_with(&format!("{SOURCE} ({}) ", meta.base)) {
        bail!("{} starts with `{top}`, not Debian's {}", changelog_path.display(), meta.base);
    }
    fs::write(&changelog_path, format!("{}\n{debian_changelog}", changelog_entry(meta)))?;
    let parsed =
        cmd::output(Command::new("dpkg-parsechangelog").arg("-l").arg(&changelog_path).args(["-S", "Version"]))?;
    if parsed.trim() != meta.version {
        bail!("dpkg-parsechangelog reads version `{}` from the new entry, not {}", parsed.trim(), meta.version);
    }
    let config_path = tree.join("debian/config.toml.in");
    let config = fs::read_to_string(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?;
    fs::write(&config_path, with_description(&config, &meta.description())?)?;

    // The orig tarball as it is, Debian's changes and ours as the debian
    // tarball; dpkg-source refuses any change outside debian/ that no
    // patch records, rather than invent a patch for it.
    cmd::run_logged(
        Command::new("dpkg-source")
            .env("LC_ALL", "C")
            .env("SOURCE_DATE_EPOCH", meta.epoch.to_string())
            .args(["--abort-on-upstream-changes", "-b"])
            .arg(meta.tree_name())
            .current_dir(out),
        "dpkg-source -b",
        &ctx.logs().join("source-package-build.log"),
        None,
    )?;
    for file in [&dsc, &tarball] {
        if !file.is_file() {
            bail!("dpkg-source -b made no {}", file.display());
        }
    }
    // The tree stays, every patch applied, for `dpkg-buildpackage`: deleting
    // its 52,000 files took from about 15 s to 3 minutes on this project's
    // machine (beside a compiler build), more than the rest of the step
    // takes; the next build deletes it.
    fs::create_dir_all(ctx.state())?;
    fs::write(&stamp, key)?;
    record_time(ctx, "source-package", started)?;
    step.done();
    Ok(dsc)
}

/// The series' patches into `tree`'s `debian/patches/`, listed after
/// Debian's, and applied on top of them with quilt `--fuzz=0`: how
/// dpkg-source applies a 3.0 (quilt) package's patches, so a patch that
/// needs fuzz or another path prefix fails here, by name.
fn add_patches(ctx: &Ctx, meta: &Meta, tree: &Path) -> Result<()> {
    let dir = tree.join("debian/patches");
    let series_path = dir.join("series");
    let debian = fs::read_to_string(&series_path)?;
    for (name, _) in &meta.patches {
        if dir.join(name).exists() {
            bail!("debian/patches/{name} exists already: a patch of Debian's has our name");
        }
        fs::copy(ctx.patches().join(name), dir.join(name)).with_context(|| format!("copying {name}"))?;
    }
    let listed = series_with_ours(&debian, meta);
    fs::write(&series_path, &listed)?;
    let mut quilt = Command::new("quilt");
    // No ~/.quiltrc: its QUILT_PATCHES would win over ours.
    quilt
        .args(["--quiltrc", "-", "push", "-a", "--fuzz=0"])
        .env("QUILT_PATCHES", "debian/patches")
        .env("QUILT_PC", ".pc")
        .env("LC_ALL", "C")
        .current_dir(tree);
    let out = quilt.output().with_context(|| format!("cannot start `{}`", cmd::show(&quilt)))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    fs::write(ctx.logs().join("source-package-quilt.log"), format!("$ {}\n{text}", cmd::show(&quilt)))?;
    if !out.status.success() {
        let at = text.lines().rev().find_map(|l| l.strip_prefix("Applying patch ")).unwrap_or("?");
        bail!(
            "the series does not apply after Debian's patches with --fuzz=0, as dpkg-source applies it: \
             `{}` failed ({}) at {at}:\n{}",
            cmd::show(&quilt),
            out.status,
            cmd::tail(&text, 30)
        );
    }
    let applied = fs::read_to_string(tree.join(".pc/applied-patches")).unwrap_or_default();
    if active(&applied) != active(&listed) {
        bail!("after quilt push -a, .pc/applied-patches is not debian/patches/series:\n{}", cmd::tail(&applied, 10));
    }
    println!("    {} patches applied after Debian's {} with --fuzz=0", meta.patches.len(), active(&debian).len());
    Ok(())
}

/// `--check`: `dpkg-source -x` of the package made, into a fresh directory,
/// as a user would, then what must hold of it.
fn check(ctx: &Ctx, meta: &Meta, dsc: &Path) -> Result<()> {
    let step = Step::start("check the source package as a user unpacks it");
    let dir = ctx.cache.join("source-package/check");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let log = ctx.logs().join("source-package-check.log");
    cmd::run_logged(
        Command::new("dpkg-source").env("LC_ALL", "C").arg("-x").arg(dsc).arg(meta.tree_name()).current_dir(&dir),
        "dpkg-source -x",
        &log,
        None,
    )?;
    let tree = dir.join(meta.tree_name());
    let debian_orig = dir.join("debian-orig");
    fs::create_dir_all(&debian_orig)?;
    cmd::output(
        Command::new("tar")
            .args(["--no-same-owner", "-xf"])
            .arg(ctx.downloads().join(DEBIAN_TARBALL))
            .arg("-C")
            .arg(&debian_orig),
    )?;
    let mut problems = Vec::new();

    // The patches: Debian's in Debian's order, then ours in the series'
    // order, every one applied by dpkg-source, ours as they are in patches/.
    let ours: Vec<String> = meta.patches.iter().map(|(name, _)| name.clone()).collect();
    let debian_series = active(&fs::read_to_string(debian_orig.join("debian/patches/series"))?);
    let expected: Vec<String> = debian_series.iter().chain(&ours).cloned().collect();
    let listed = active(&fs::read_to_string(tree.join("debian/patches/series"))?);
    if listed != expected {
        problems.push(format!("debian/patches/series lists {listed:?}, not Debian's patches then ours: {expected:?}"));
    }
    let applied = applied_by_dpkg_source(&fs::read_to_string(&log)?);
    if applied != expected {
        problems.push(format!("dpkg-source -x applied {applied:?}, not {expected:?}"));
    }
    let recorded = active(&fs::read_to_string(tree.join(".pc/applied-patches")).unwrap_or_default());
    if recorded != expected {
        problems.push(format!(".pc/applied-patches is {recorded:?}, not {expected:?}"));
    }
    for name in &ours {
        if fs::read(tree.join("debian/patches").join(name)).ok() != fs::read(ctx.patches().join(name)).ok() {
            problems.push(format!("debian/patches/{name} is not patches/{name}"));
        }
    }

    // debian/: Debian's but for the changelog, the config's description,
    // the series and our patches; `debian/rules` (the test step) untouched.
    let mut changed = Vec::new();
    compare_trees(&debian_orig.join("debian"), &tree.join("debian"), Path::new("debian"), &mut changed)?;
    let mut allowed: Vec<String> =
        ["debian/changelog", "debian/config.toml.in", "debian/patches/series"].iter().map(|s| s.to_string()).collect();
    allowed.extend(ours.iter().map(|name| format!("debian/patches/{name} (new)")));
    let unexpected: Vec<&String> = changed.iter().filter(|c| !allowed.contains(c)).collect();
    let missing: Vec<&String> = allowed.iter().filter(|a| !changed.contains(a)).collect();
    if !unexpected.is_empty() {
        problems.push(format!("debian/ differs from Debian's where only Debian's may be: {unexpected:?}"));
    }
    if !missing.is_empty() {
        problems.push(format!("debian/ lacks these changes of ours: {missing:?}"));
    }

    // The version: the new entry's, between Debian's and its next update,
    // Debian's history below it.
    let parse = |args: &[&str]| -> Result<String> {
        Ok(cmd::output(Command::new("dpkg-parsechangelog").arg("-l").arg(tree.join("debian/changelog")).args(args))?
            .trim()
            .to_string())
    };
    let version = parse(&["-S", "Version"])?;
    if version != meta.version {
        problems.push(format!("the changelog's version is {version}, not {}", meta.version));
    }
    if let Err(err) = check_version_order(&meta.base, &version) {
        problems.push(format!("{err:#}"));
    }
    let previous = parse(&["--offset", "1", "--count", "1", "-S", "Version"])?;
    if previous != meta.base {
        problems.push(format!("the entry below ours is {previous}, not Debian's {}", meta.base));
    }
    for (field, want) in [("Distribution", DISTRIBUTION.to_string()), ("Maintainer", meta.maintainer.clone())] {
        let got = parse(&["-S", field])?;
        if got != want {
            problems.push(format!("the changelog's {field} is `{got}`, not `{want}`"));
        }
    }
    let dsc_text = fs::read_to_string(dsc)?;
    if dsc_field(&dsc_text, "Format") != Some("3.0 (quilt)") || dsc_field(&dsc_text, "Version") != Some(&meta.version) {
        problems.push(format!("{} is not format 3.0 (quilt), version {}", dsc.display(), meta.version));
    }
    let orig_pin = fetch::pins(ctx)?.into_iter().find(|(name, _)| name == ORIG_TARBALL).map(|(_, sum)| sum);
    let orig_listed =
        dsc_sha256(&dsc_text).into_iter().find(|(_, _, name)| name == ORIG_TARBALL).map(|(sum, _, _)| sum);
    if orig_pin.is_none() || orig_listed != orig_pin {
        problems
            .push(format!("{} names {ORIG_TARBALL} with SHA-256 {orig_listed:?}, pinned {orig_pin:?}", dsc.display()));
    }

    // The version line: the config as `debian/rules` expands it (m4, the
    // stable channel), read as bootstrap reads `[rust]`.
    let config = cmd::output(
        Command::new("m4").arg("-DRELEASE_CHANNEL=stable").arg("debian/config.toml.in").current_dir(&tree),
    )?;
    let rust = toml_table(&config, "rust");
    let description = format!("\"{}\"", meta.description());
    if rust.iter().find(|(k, _)| k == "description").map(|(_, v)| v.as_str()) != Some(&description) {
        problems.push(format!("m4 of debian/config.toml.in gives [rust] {rust:?}, no description = {description}"));
    }
    if rust.iter().find(|(k, _)| k == "channel").map(|(_, v)| v.as_str()) != Some("\"stable\"") {
        problems.push(format!("m4 of debian/config.toml.in gives [rust] {rust:?}, not channel = \"stable\""));
    }
    let src_version = fs::read_to_string(tree.join("src/version"))?;
    if src_version.trim() != release(&meta.base) {
        problems.push(format!("src/version is {}, not {}", src_version.trim(), release(&meta.base)));
    }
    // The bootstrap code the line depends on, as the shipped tree has it.
    let lib = fs::read_to_string(tree.join("src/bootstrap/lib.rs"))?;
    let channel = fs::read_to_string(tree.join("src/bootstrap/channel.rs"))?;
    if !lib.contains("if let Some(ref s) = self.config.description {") {
        problems.push("src/bootstrap/lib.rs: rust_version() no longer appends the description".to_string());
    }
    if !channel.contains("if true || !dir.join(\".git\").exists() {") {
        problems.push("src/bootstrap/channel.rs: git information is no longer disabled".to_string());
    }

    // The unpacked tree stays for a look (see `build` on deleting it); the
    // next check deletes it.
    if !problems.is_empty() {
        bail!(
            "the source package {} is wrong (unpacked in {}):\n  {}",
            dsc.display(),
            dir.display(),
            problems.join("\n  ")
        );
    }
    println!(
        "    {} unpacks with dpkg-source -x, which applies Debian's {} patches, then the series' {}",
        dsc.display(),
        debian_series.len(),
        ours.len()
    );
    println!(
        "    debian/ is Debian's but for the changelog, config.toml.in's description, patches/series and our patches"
    );
    println!(
        "    version {} (dpkg sorts it after {} and before {}{STABLE_UPDATE})",
        meta.version, meta.base, meta.base
    );
    println!("    rustc -vV will print first `{}`", meta.version_line());
    step.done();
    Ok(())
}

/// The `key = value` lines of a TOML table (`[name]` up to the next table).
fn toml_table(text: &str, name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The files that differ between `a` and `b` (both directories), as
/// `prefix/path`; files only in `b` end with ` (new)`, only in `a` with
/// ` (gone)`.
fn compare_trees(a: &Path, b: &Path, prefix: &Path, changed: &mut Vec<String>) -> Result<()> {
    let names = |dir: &Path| -> Result<Vec<std::ffi::OsString>> {
        let mut names: Vec<_> = fs::read_dir(dir)?.flatten().map(|e| e.file_name()).collect();
        names.sort();
        Ok(names)
    };
    let (in_a, in_b) = (names(a)?, names(b)?);
    for name in in_a.iter().chain(in_b.iter().filter(|n| !in_a.contains(n))) {
        let (pa, pb) = (a.join(name), b.join(name));
        let shown = prefix.join(name).display().to_string();
        match (pa.symlink_metadata().ok(), pb.symlink_metadata().ok()) {
            (Some(ma), Some(mb)) if ma.is_dir() && mb.is_dir() => compare_trees(&pa, &pb, &prefix.join(name), changed)?,
            (Some(_), None) => changed.push(format!("{shown} (gone)")),
            (None, Some(_)) => changed.push(format!("{shown} (new)")),
            (Some(_), Some(_)) => {
                if fs::read(&pa).ok() != fs::read(&pb).ok() {
                    changed.push(shown);
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn meta() -> Meta {
        Meta {
            base: "1.63.0+dfsg1-2".into(),
            version: local_version("1.63.0+dfsg1-2"),
            series: "c861b5ed88fc".into(),
            patches: vec![
                (
                    "d-rustc_session-add-Z-patchable-function-entry-total_nops-prefix_nops.patch".into(),
                    "rustc_session: add -Z patchable-function-entry=total_nops[,prefix_nops]".into(),
                ),
                (
                    "u-rustc_llvm-run-the-entry-instrumenter-so-Z-instrument-mcount-emits-calls.patch".into(),
                    "rustc_llvm: run the entry instrumenter so -Z instrument-mcount emits calls".into(),
                ),
            ],
            maintainer: "rustc-pfe developers <dev@rustc-pfe.invalid>".into(),
            date: "Sat, 05 Dec 2026 12:00:08 +0000".into(),
            epoch: 1_796_472_008,
        }
    }

    #[test]
    fn the_local_version_sorts_between_debians_and_its_next_update() {
        let base = "1.63.0+dfsg1-2";
        assert_eq!(local_version(base), "1.63.0+dfsg1-2pfe1");
        check_version_order(base, &local_version(base)).unwrap();
        // What the local suffix is not: `+pfe1` sorts after the security
        // upload, and a bare number would be Debian's next revision.
        assert!(check_version_order(base, "1.63.0+dfsg1-2+pfe1").is_err());
        assert!(check_version_order(base, "1.63.0+dfsg1-3").is_err());
        assert!(check_version_order(base, base).is_err());
        assert_eq!((upstream(base), release(base)), ("1.63.0+dfsg1", "1.63.0"));
    }

    #[test]
    fn the_changelog_entry_is_what_dpkg_parsechangelog_reads() {
        let meta = meta();
        let entry = changelog_entry(&meta);
        assert!(entry.starts_with("rustc (1.63.0+dfsg1-2pfe1) bookworm; urgency=medium\n\n  * Local build"), "{entry}");
        assert!(
            entry.ends_with("\n\n -- rustc-pfe developers <dev@rustc-pfe.invalid>  Sat, 05 Dec 2026 12:00:08 +0000\n")
        );
        assert!(
            entry.contains("\n    - rustc_session: add -Z patchable-function-entry=total_nops[,prefix_nops]\n"),
            "{entry}"
        );
        let words = entry.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("patch series (patchable function entries) c861b5ed88fc:"), "{entry}");
        assert!(words.contains("\"rustc 1.63.0 (rustc-pfe c861b5ed88fc)\""), "{entry}");
        assert!(words.contains("the series' 2 patches, after Debian's"), "{entry}");
        for line in entry.lines().filter(|l| l.starts_with("  ")) {
            assert!(line.len() <= 80, "too long for a changelog: {line:?}");
        }

        let debian = "rustc (1.63.0+dfsg1-2) unstable; urgency=medium\n\n  * fix\n\n \
                      -- A B <a@b.example>  Sat, 14 Jan 2023 09:38:46 +0100\n";
        let file = std::env::temp_dir().join(format!("xtask-changelog-{}", std::process::id()));
        fs::write(&file, format!("{entry}\n{debian}")).unwrap();
        let parse = |args: &[&str]| {
            cmd::output(Command::new("dpkg-parsechangelog").arg("-l").arg(&file).args(args))
                .map(|s| s.trim().to_string())
        };
        let got = [
            parse(&["-S", "Version"]),
            parse(&["-S", "Distribution"]),
            parse(&["-S", "Maintainer"]),
            parse(&["-S", "Timestamp"]),
            parse(&["--offset", "1", "--count", "1", "-S", "Version"]),
        ];
        fs::remove_file(&file).ok();
        let got: Vec<String> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(
            got,
            [
                "1.63.0+dfsg1-2pfe1",
                "bookworm",
                "rustc-pfe developers <dev@rustc-pfe.invalid>",
                "1796472008",
                "1.63.0+dfsg1-2"
            ]
        );
    }

    #[test]
    fn the_description_goes_first_in_the_rust_table() {
        let config = "[llvm]\nlink-shared = true\n\n[rust]\njemalloc = false\nchannel = \"RELEASE_CHANNEL\"\n";
        let with = with_description(config, "rustc-pfe c861b5ed88fc").unwrap();
        assert_eq!(
            with,
            "[llvm]\nlink-shared = true\n\n[rust]\ndescription = \"rustc-pfe c861b5ed88fc\"\njemalloc = false\n\
             channel = \"RELEASE_CHANNEL\"\n"
        );
        assert_eq!(toml_table(&with, "rust")[0], ("description".to_string(), "\"rustc-pfe c861b5ed88fc\"".to_string()));
        assert!(with_description(&with, "again").is_err(), "a second description");
        assert!(with_description("[llvm]\n", "x").is_err(), "no [rust]");
        assert!(with_description(config, "it's").is_err(), "an m4 quote");
        assert_eq!(meta().version_line(), "rustc 1.63.0 (rustc-pfe c861b5ed88fc)");
    }

    #[test]
    fn our_patches_are_listed_after_debians() {
        let debian = "# Patches for upstream\nu-a.patch\n#u-off.patch\n\n## more\nd-b.patch\n";
        let text = series_with_ours(debian, &meta());
        assert!(text.starts_with(debian), "{text}");
        assert_eq!(
            active(&text),
            [
                "u-a.patch",
                "d-b.patch",
                "d-rustc_session-add-Z-patchable-function-entry-total_nops-prefix_nops.patch",
                "u-rustc_llvm-run-the-entry-instrumenter-so-Z-instrument-mcount-emits-calls.patch"
            ]
        );
        assert_eq!(active("a.patch -p0\n b.patch # why\n"), ["a.patch", "b.patch"]);
    }

    #[test]
    fn what_dpkg_source_applied_is_read_from_its_messages() {
        let log = "$ dpkg-source -x x.dsc\ndpkg-source: info: extracting rustc in rustc-1.63.0+dfsg1\n\
                   dpkg-source: info: unpacking rustc_1.63.0+dfsg1.orig.tar.xz\n\
                   dpkg-source: info: applying u-a.patch\ndpkg-source: info: applying d-rust-gdb-paths\n";
        assert_eq!(applied_by_dpkg_source(log), ["u-a.patch", "d-rust-gdb-paths"]);
    }

    #[test]
    fn dsc_fields_and_sums() {
        let dsc = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nFormat: 3.0 (quilt)\nSource: rustc\n\
                   Version: 1.63.0+dfsg1-2\nChecksums-Sha256:\n ad79 32527136 rustc_1.63.0+dfsg1.orig.tar.xz\n \
                   5234 92248 rustc_1.63.0+dfsg1-2.debian.tar.xz\nFiles:\n 0a 1 x\n";
        assert_eq!(dsc_field(dsc, "Version"), Some("1.63.0+dfsg1-2"));
        assert_eq!(dsc_field(dsc, "Format"), Some("3.0 (quilt)"));
        assert_eq!(
            dsc_sha256(dsc),
            [
                ("ad79".to_string(), "32527136".to_string(), "rustc_1.63.0+dfsg1.orig.tar.xz".to_string()),
                ("5234".to_string(), "92248".to_string(), "rustc_1.63.0+dfsg1-2.debian.tar.xz".to_string())
            ]
        );
    }

    #[test]
    fn tree_comparison_names_changed_new_and_gone_files() {
        let tmp = std::env::temp_dir().join(format!("xtask-compare-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        for (dir, files) in [
            (&a, [("rules", "x"), ("patches/series", "1"), ("gone", "")]),
            (&b, [("rules", "x"), ("patches/series", "2"), ("patches/new", "")]),
        ] {
            for (name, text) in files {
                fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
                fs::write(dir.join(name), text).unwrap();
            }
        }
        let mut changed = Vec::new();
        let result = compare_trees(&a, &b, Path::new("debian"), &mut changed);
        fs::remove_dir_all(&tmp).ok();
        result.unwrap();
        changed.sort();
        assert_eq!(changed, ["debian/gone (gone)", "debian/patches/new (new)", "debian/patches/series"]);
    }
}
