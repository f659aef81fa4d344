//! `./x source-package --chroot`: the binary packages of the last `--build`,
//! installed into a minimal Debian 12 (`debootstrap --variant=minbase
//! bookworm`, a fresh copy each time) as a user installs local packages
//! (`apt-get install ./x.deb`, dependencies from the archive), and checked
//! there: never on the build machine itself, whose stage0 is Debian's
//! rustc. What is checked:
//!
//! - the three packages a user compiles with (`rustc`, `libstd-rust-dev`,
//!   `libstd-rust-<release>`) are installed at the build's version, and
//!   `rustc` pins `libstd-rust-dev` to exactly that version;
//! - `rustc -vV` prints the build's version line, not Debian's bare one;
//! - a program links against the installed std and runs (the series'
//!   metadata version: an unpatched std is refused with E0786), plain and
//!   padded;
//! - `-Zpatchable-function-entry=16,16` with `RUSTC_BOOTSTRAP=1` pads an
//!   object that `pfe-check --expect 16,16` accepts; without
//!   `RUSTC_BOOTSTRAP` this stable-channel compiler refuses `-Z`;
//! - apt's view: `upgrade` leaves the packages alone, the archive's own
//!   `rustc` is a downgrade asked for by version, which takes the std
//!   with it, and the archive's std alone never stays beside this compiler.
//!
//! The control: a second fresh chroot with the archive's `rustc`, where the
//! identity and padding checks must fail.

use super::binary::{self, Deb};
use crate::cmd::{self, Step};
use crate::deps::{self, Action};
use crate::paths::Ctx;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// The release the chroot is made of.
const SUITE: &str = "bookworm";

/// A program that shows it ran, and calls through a function pointer so
/// that the padded build's entries are used.
const HELLO: &str = r#"#[inline(never)]
fn add(a: u64, b: u64) -> u64 {
    a * 1000 + b
}

fn main() {
    let f: fn(u64, u64) -> u64 = std::hint::black_box(add);
    println!("hello from the installed rustc: {}", f(6, 7));
}
"#;

/// A library whose object `pfe-check` audits.
const PADDED: &str = r#"#[no_mangle]
pub extern "C" fn pfe_chroot_sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

#[inline(never)]
pub fn double(x: u64) -> u64 {
    x.wrapping_mul(2)
}
"#;

/// The first `URIs:` (deb822) or `deb URI` (one-line) source of apt's
/// configuration that offers `suite` itself: where the chroot's packages
/// come from, as the host's come. No archive address is written here.
fn mirror(sources: &[(String, String)], suite: &str) -> Option<String> {
    for (name, text) in sources {
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
                };
                let types = field("Types:");
                let suites = field("Suites:");
                if types.split_whitespace().any(|t| t == "deb") && suites.split_whitespace().any(|s| s == suite) {
                    return field("URIs:").split_whitespace().next().map(str::to_string);
                }
            }
        } else {
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[')).collect();
                if let ["deb", uri, s, ..] = words.as_slice() {
                    if *s == suite {
                        return Some(uri.to_string());
                    }
                }
            }
        }
    }
    None
}

fn host_sources() -> Vec<(String, String)> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files
        .into_iter()
        .filter_map(|f| Some((f.to_string_lossy().into_owned(), fs::read_to_string(&f).ok()?)))
        .collect()
}

/// A directory to `chroot` into, with `/proc` mounted while the value lives.
struct Chroot {
    root: PathBuf,
}

impl Chroot {
    /// A fresh copy of `base` at `root`.
    fn fresh(base: &Path, root: &Path) -> Result<Chroot> {
        if root.exists() {
            unmount(root);
            fs::remove_dir_all(root).with_context(|| format!("cannot delete {}", root.display()))?;
        }
        cmd::run(Command::new("cp").arg("-a").arg(base).arg(root))?;
        fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).ok();
        cmd::run(Command::new("mount").args(["-t", "proc", "proc"]).arg(root.join("proc")))?;
        Ok(Chroot { root: root.to_path_buf() })
    }

    /// `sh -c script` inside, as root, with a clean environment and `env`
    /// added.
    fn command(&self, script: &str, env: &[&str]) -> Command {
        let mut command = Command::new("chroot");
        command
            .arg(&self.root)
            .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"])
            .arg("DEBIAN_FRONTEND=noninteractive")
            .args(env)
            .args(["sh", "-c", script]);
        command
    }

    fn output(&self, script: &str, env: &[&str]) -> Result<Output> {
        let mut command = self.command(script, env);
        command.output().with_context(|| format!("cannot start `{}`", cmd::show(&command)))
    }

    /// stdout of `script`, which must succeed.
    fn run(&self, script: &str, env: &[&str]) -> Result<String> {
        let out = self.output(script, env)?;
        if !out.status.success() {
            bail!(
                "in the chroot, `{script}` failed ({}):\n{}{}",
                out.status,
                cmd::tail(&String::from_utf8_lossy(&out.stdout), 20),
                cmd::tail(&String::from_utf8_lossy(&out.stderr), 20)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A long step inside, its output in `log`.
    fn run_logged(&self, script: &str, step: &str, log: &Path) -> Result<()> {
        cmd::run_logged(&mut self.command(script, &[]), step, log, None).map(|_| ())
    }

    fn write(&self, path: &str, text: &str) -> Result<()> {
        let file = self.root.join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().expect("a file in a directory"))?;
        fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        unmount(&self.root);
    }
}

fn unmount(root: &Path) {
    let proc = root.join("proc");
    let mounted = fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(1) == Some(&*proc.to_string_lossy())))
        .unwrap_or(false);
    if mounted {
        let _ = Command::new("umount").arg(&proc).status();
    }
}

/// The minimal Debian 12 every check starts from, made once.
fn base(ctx: &Ctx) -> Result<PathBuf> {
    let dir = ctx.cache.join("chroot");
    let base = dir.join("base");
    let done = dir.join("base.done");
    if done.is_file() && base.join("usr/bin/apt-get").is_file() {
        Step::skip("debootstrap a minimal Debian 12", "made before");
        return Ok(base);
    }
    deps::install("install debootstrap", &["debootstrap"])?;
    let Some(mirror) = mirror(&host_sources(), SUITE) else {
        bail!("no apt source of this machine offers `{SUITE}`: the chroot's packages would have no archive");
    };
    let step = Step::start(&format!("debootstrap --variant=minbase {SUITE}"));
    if base.exists() {
        unmount(&base);
        fs::remove_dir_all(&base)?;
    }
    fs::create_dir_all(&dir)?;
    cmd::run_logged(
        Command::new("debootstrap").args(["--variant=minbase", SUITE]).arg(&base).arg(&mirror),
        "debootstrap",
        &ctx.logs().join("chroot-debootstrap.log"),
        None,
    )?;
    fs::write(&done, format!("{SUITE} {mirror}\n"))?;
    step.done();
    Ok(base)
}

/// The packages a user compiles with, of the build: `rustc`,
/// `libstd-rust-dev` and the runtime `libstd-rust-1.63`.
fn compiler_debs(debs: &[Deb]) -> Result<Vec<&Deb>> {
    let wanted = |p: &str| p == "rustc" || p == "libstd-rust-dev" || (p.starts_with("libstd-rust-1.") && !p.ends_with("-dbgsym"));
    let found: Vec<&Deb> = debs.iter().filter(|d| wanted(&d.package)).collect();
    ensure!(found.len() == 3, "the build has not the three packages rustc needs: {:?}", found);
    Ok(found)
}

/// `rustc -vV`'s first line is the build's, and not Debian's bare one.
fn identity(chroot: &Chroot, version_line: &str) -> Result<String> {
    let first = chroot.run("rustc -vV", &[])?.lines().next().unwrap_or_default().to_string();
    ensure!(first == version_line, "`rustc -vV` prints `{first}`, not `{version_line}`");
    ensure!(!first.ends_with(|c: char| c.is_ascii_digit()), "`{first}` is Debian's bare version line");
    Ok(first)
}

/// The padded object passes `pfe-check --expect 16,16`; returns what it
/// said last.
fn pads(chroot: &Chroot, pfe_check: &Path, out: &Path) -> Result<String> {
    chroot.write("/tmp/pfe/padded.rs", PADDED)?;
    chroot.run(
        "cd /tmp/pfe && rustc -O --crate-type=lib --emit=obj -Zpatchable-function-entry=16,16 padded.rs -o padded.o",
        &["RUSTC_BOOTSTRAP=1"],
    )?;
    let object = out.join("padded.o");
    fs::copy(chroot.root.join("tmp/pfe/padded.o"), &object)?;
    let said = cmd::output(Command::new(pfe_check).args(["--expect", "16,16"]).arg(&object))?;
    Ok(said.lines().last().unwrap_or_default().to_string())
}

/// What an `apt-get -s` plan does to `package`: `None` if it leaves it.
fn plan_for<'a>(actions: &'a [Action], package: &str) -> Option<&'a Action> {
    actions.iter().find(|a| match a {
        Action::Remove { package: p, .. } | Action::Replace { package: p, .. } => p == package,
    })
}

/// apt's plans for the ways the archive's packages can meet these:
/// returns one line each.
fn apt_view(chroot: &Chroot, version: &str, base_version: &str, std_runtime: &str) -> Result<Vec<String>> {
    let mut said = Vec::new();
    let upgrade = chroot.run("apt-get -s -q upgrade", &["LC_ALL=C"])?;
    let actions = deps::simulated_actions(&upgrade);
    for package in ["rustc", "libstd-rust-dev", std_runtime] {
        ensure!(plan_for(&actions, package).is_none(), "`apt-get upgrade` would change {package}:\n{upgrade}");
    }
    said.push("`apt-get upgrade`: leaves rustc and its std alone".to_string());

    let install = chroot.run("apt-get -s -q install rustc", &["LC_ALL=C"])?;
    ensure!(
        install.contains(&format!("rustc is already the newest version ({version})")),
        "`apt-get install rustc` would not keep {version}:\n{}",
        cmd::tail(&install, 10)
    );
    said.push(format!("`apt-get install rustc`: \"rustc is already the newest version ({version})\""));

    let archive = chroot.run(&format!("apt-get -s -q --allow-downgrades install rustc={base_version}"), &["LC_ALL=C"])?;
    let actions = deps::simulated_actions(&archive);
    for package in ["rustc", "libstd-rust-dev"] {
        match plan_for(&actions, package) {
            Some(Action::Replace { installed, new, .. }) if installed == version && new == base_version => {}
            other => bail!("`apt-get install rustc={base_version}` plans {other:?} for {package}:\n{archive}"),
        }
    }
    said.push(format!(
        "`apt-get install rustc={base_version}`: a downgrade, asked for by version, of rustc and libstd-rust-dev together"
    ));

    let std_alone =
        chroot.run(&format!("apt-get -s -q --allow-downgrades install libstd-rust-dev={base_version}"), &["LC_ALL=C"])?;
    let actions = deps::simulated_actions(&std_alone);
    match plan_for(&actions, "rustc") {
        Some(Action::Remove { .. }) => said.push(format!(
            "`apt-get install libstd-rust-dev={base_version}`: removes rustc; the archive's std never stays beside it"
        )),
        Some(Action::Replace { new, .. }) if new == base_version => said.push(format!(
            "`apt-get install libstd-rust-dev={base_version}`: takes rustc back to {base_version} too"
        )),
        other => bail!("`apt-get install libstd-rust-dev={base_version}` leaves rustc as {other:?}:\n{std_alone}"),
    }
    Ok(said)
}

pub fn run(ctx: &Ctx, meta: &super::Meta) -> Result<()> {
    let started = Instant::now();
    let base_version = meta.base.as_str();
    let build_dir = binary::dir(ctx);
    let record = fs::read_to_string(build_dir.join("record"))
        .with_context(|| format!("no binary build in {}: run `./x source-package --build` first", build_dir.display()))?;
    let version = binary::record_field(&record, "source").and_then(|s| s.split_whitespace().nth(1)).unwrap_or_default();
    let version_line = binary::record_field(&record, "version-line").unwrap_or_default().to_string();
    let series = binary::record_field(&record, "series").unwrap_or_default();
    println!("    the build of series {series}, {version}: `{version_line}`");
    if series != meta.series {
        println!("    (patches/ is series {} now: this checks the packages built before)", meta.series);
    }
    let debs = binary::debs(&build_dir)?;
    let compiler = compiler_debs(&debs)?;
    for deb in &compiler {
        ensure!(deb.version == version, "{} is {}, not the recorded {version}", deb.package, deb.version);
    }
    let std_runtime = compiler.iter().find(|d| d.package.starts_with("libstd-rust-1.")).map(|d| d.package.clone());
    let std_runtime = std_runtime.expect("compiler_debs found it");
    crate::build::pfe_check(ctx)?;
    let pfe_check = ctx.toolchain().join("bin/pfe-check");
    let base = base(ctx)?;
    let dir = ctx.cache.join("chroot");
    let out = dir.join("out");
    fs::create_dir_all(&out)?;
    let mut report = Vec::new();

    let step = Step::start("install the build's rustc into a fresh minimal Debian 12");
    let chroot = Chroot::fresh(&base, &dir.join("check"))?;
    let inside = Path::new("/tmp/debs");
    fs::create_dir_all(chroot.root.join("tmp/debs"))?;
    let mut files = Vec::new();
    for deb in &compiler {
        let name = deb.file.file_name().expect("a file").to_string_lossy().into_owned();
        fs::copy(&deb.file, chroot.root.join("tmp/debs").join(&name))?;
        files.push(inside.join(name).to_string_lossy().into_owned());
    }
    chroot.run_logged(
        &format!("apt-get update -q && apt-get install -y -q --no-install-recommends {}", files.join(" ")),
        "apt-get install",
        &ctx.logs().join("chroot-install.log"),
    )?;
    step.done();

    let step = Step::start("check the installed compiler");
    let installed = chroot.run(
        &format!("dpkg-query -W -f '${{Package}} ${{Version}}\\n' rustc libstd-rust-dev {std_runtime}"),
        &[],
    )?;
    for line in installed.lines() {
        ensure!(line.ends_with(&format!(" {version}")), "installed: `{line}`, not {version}");
    }
    report.push(format!("installed: {}", installed.trim().replace('\n', ", ")));
    let depends = chroot.run("dpkg-query -W -f '${Depends}' rustc", &[])?;
    let pin = format!("libstd-rust-dev (= {version})");
    ensure!(depends.contains(&pin), "rustc's Depends has no `{pin}`: {depends}");
    report.push(format!("rustc Depends: ... {pin} ..."));
    report.push(format!("`rustc -vV`: {}", identity(&chroot, &version_line)?));

    chroot.write("/tmp/pfe/hello.rs", HELLO)?;
    let plain = chroot.run("cd /tmp/pfe && rustc -O hello.rs -o hello && ./hello", &[])?;
    let padded = chroot.run(
        "cd /tmp/pfe && rustc -O -Zpatchable-function-entry=16,16 hello.rs -o hello-padded && ./hello-padded",
        &["RUSTC_BOOTSTRAP=1"],
    )?;
    let expected = "hello from the installed rustc: 6007";
    ensure!(plain.trim() == expected && padded.trim() == expected, "the programs printed `{plain}` and `{padded}`");
    report.push(format!("a program built plain and one with =16,16 print `{expected}`"));
    report.push(format!("pfe-check --expect 16,16 on an object built there: {}", pads(&chroot, &pfe_check, &out)?));

    let stable = chroot.output("cd /tmp/pfe && rustc --emit=obj -Zpatchable-function-entry=16,16 hello.rs", &[])?;
    let refusal = String::from_utf8_lossy(&stable.stderr).into_owned();
    ensure!(
        !stable.status.success() && refusal.contains("only accepted on the nightly compiler"),
        "without RUSTC_BOOTSTRAP, -Z was not refused: {refusal}"
    );
    report.push("without RUSTC_BOOTSTRAP: \"the option `Z` is only accepted on the nightly compiler\"".to_string());
    let later = format!("{base_version}{}", super::STABLE_UPDATE);
    ensure!(deps::version_lt(version, &later)?, "{version} does not sort below {later}");
    report.extend(apt_view(&chroot, version, base_version, &std_runtime)?);
    report.push(format!("Debian 12's next update of this release, {later}, sorts above {version} (dpkg)"));
    drop(chroot);
    step.done();

    let step = Step::start("control: the archive's rustc in another fresh chroot must fail the same checks");
    let control = Chroot::fresh(&base, &dir.join("control"))?;
    control.run_logged(
        "apt-get update -q && apt-get install -y -q --no-install-recommends rustc",
        "apt-get install rustc (the archive's)",
        &ctx.logs().join("chroot-control.log"),
    )?;
    let archive = control.run("dpkg-query -W -f '${Version}' rustc", &[])?;
    let first = control.run("rustc -vV", &[])?.lines().next().unwrap_or_default().to_string();
    ensure!(identity(&control, &version_line).is_err(), "the identity check passes Debian's rustc {archive}");
    ensure!(pads(&control, &pfe_check, &out).is_err(), "the padding check passes Debian's rustc {archive}");
    report.push(format!(
        "control, the archive's rustc {archive}: `rustc -vV` prints `{first}`, -Zpatchable-function-entry is refused"
    ));
    drop(control);
    step.done();

    println!("./x source-package --chroot: done in {}", cmd::elapsed(started.elapsed()));
    for line in &report {
        println!("    {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_comes_from_the_hosts_own_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n\
                      Suites: bookworm-security\nComponents: main\n";
        let sources = vec![("/etc/apt/sources.list.d/debian.sources".to_string(), deb822.to_string())];
        assert_eq!(mirror(&sources, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(mirror(&sources, "trixie"), None);
        let one_line = "# deb http://old.example/debian bookworm main\n\
                        deb [arch=amd64] http://one.example/debian bookworm main\n";
        let sources = vec![("/etc/apt/sources.list".to_string(), one_line.to_string())];
        assert_eq!(mirror(&sources, "bookworm").as_deref(), Some("http://one.example/debian"));
    }

    #[test]
    fn plans_are_read_per_package() {
        let plan = "Inst libstd-rust-dev [1.63.0+dfsg1-2pfe1] (1.63.0+dfsg1-2 Debian:12.15/oldstable [amd64])\n\
                    Remv rustc [1.63.0+dfsg1-2pfe1]\n";
        let actions = deps::simulated_actions(plan);
        assert!(matches!(plan_for(&actions, "rustc"), Some(Action::Remove { .. })));
        assert!(matches!(plan_for(&actions, "libstd-rust-dev"), Some(Action::Replace { new, .. }) if new == "1.63.0+dfsg1-2"));
        assert!(plan_for(&actions, "gcc").is_none());
    }
}
