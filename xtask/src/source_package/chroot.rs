//! `./x source-package --chroot`: the binary packages of the last `--build`,
//! installed into a minimal Debian 12 (`debootstrap --variant=minbase
//! bookworm`, a fresh copy each time, with the host's own apt sources for
//! bookworm, bookworm-updates and bookworm-security) as a user installs
//! local packages (`apt-get install ./x.deb`, dependencies from the
//! archive), and checked there: never on the build machine itself, whose
//! stage0 is Debian's rustc. What is checked:
//!
//! - the three packages a user compiles with (`rustc`, `libstd-rust-dev`,
//!   `libstd-rust-<release>`) are installed at the build's version, and
//!   `rustc` pins `libstd-rust-dev` to exactly that version;
//! - `rustc -vV` prints the build's version line;
//! - a program builds against the installed std and runs, plain and padded;
//! - `-Zpatchable-function-entry=16,16` with `RUSTC_BOOTSTRAP=1` pads an
//!   object that `pfe-check --expect 16,16` accepts, and pfe-check refuses
//!   the same object built plain; without `RUSTC_BOOTSTRAP` this
//!   stable-channel compiler refuses `-Z`;
//! - apt's view of today's archive: `upgrade` leaves the packages alone;
//!   the archive's `rustc` or std alone is refused (each pins the other
//!   to its own version); all three of the archive's together are a
//!   downgrade, asked for by version. Debian 12's next update of this
//!   release (`-2+deb12u1`) sorts above the local version, so once it is
//!   published a plain `apt-get upgrade` takes it: by design (a security
//!   fix wins), and checked with dpkg's ordering, since no such upload
//!   exists.
//!
//! The control: a second fresh chroot with the archive's `rustc`, where
//! the identity and padding checks must fail the way Debian's compiler
//! fails them (its bare version line; `unknown debugging option`).
//!
//! Every command runs in a mount namespace of its own (`unshare --mount`,
//! private propagation) where `/proc` is mounted for it, so no mount
//! outlives the command, whatever ends it.

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
    // std::hint::black_box is unstable in 1.63.
    let f: fn(u64, u64) -> u64 = unsafe { std::ptr::read_volatile(&(add as fn(u64, u64) -> u64)) };
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

/// The host's `deb` sources, `(URI, suite)`, from apt's configuration
/// files (`sources.list`, `*.list` and `*.sources` in `sources.list.d`, the
/// files apt reads), one-line and deb822.
fn deb_sources(files: &[(String, String)]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (name, text) in files {
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string()).unwrap_or_default()
                };
                if !field("Types:").split_whitespace().any(|t| t == "deb") || field("Enabled:") == "no" {
                    continue;
                }
                for uri in field("URIs:").split_whitespace() {
                    for suite in field("Suites:").split_whitespace() {
                        found.push((uri.to_string(), suite.to_string()));
                    }
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default();
                // `deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS`: the
                // options may hold spaces.
                let Some(rest) = line.trim().strip_prefix("deb ") else { continue };
                let rest = rest.trim_start();
                let rest = match rest.strip_prefix('[') {
                    Some(options) => options.split_once(']').map_or("", |(_, r)| r),
                    None => rest,
                };
                let mut words = rest.split_whitespace();
                if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
                    found.push((uri.to_string(), suite.to_string()));
                }
            }
        }
    }
    found
}

/// The host's source of `suite`, if it has one.
fn source_of(sources: &[(String, String)], suite: &str) -> Option<String> {
    sources.iter().find(|(_, s)| s == suite).map(|(uri, _)| uri.clone())
}

/// The chroot's `sources.list`: Debian 12 and its updates, from where the
/// host takes them.
fn chroot_sources(sources: &[(String, String)]) -> Result<String> {
    let mut text = String::new();
    for suite in [SUITE.to_string(), format!("{SUITE}-updates"), format!("{SUITE}-security")] {
        let uri = source_of(sources, &suite)
            .with_context(|| format!("no apt source of this machine offers `{suite}`"))?;
        text.push_str(&format!("deb {uri} {suite} main\n"));
    }
    Ok(text)
}

fn host_sources() -> Vec<(String, String)> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let files: Vec<(String, String)> = files
        .into_iter()
        .filter_map(|f| Some((f.to_string_lossy().into_owned(), fs::read_to_string(&f).ok()?)))
        .collect();
    deb_sources(&files)
}

/// A directory to `chroot` into.
struct Chroot {
    root: PathBuf,
}

/// Mounts `/proc` in the new mount namespace, then enters the chroot.
const ENTER: &str = "mount -t proc proc \"$1/proc\" && exec chroot \"$@\"";

impl Chroot {
    /// A fresh copy of `base` at `root`, with `sources` as its apt sources.
    fn fresh(base: &Path, root: &Path, sources: &str) -> Result<Chroot> {
        if root.exists() {
            fs::remove_dir_all(root).with_context(|| format!("cannot delete {}", root.display()))?;
        }
        cmd::run(Command::new("cp").arg("-a").arg(base).arg(root))?;
        fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).context("cannot copy /etc/resolv.conf")?;
        fs::write(root.join("etc/apt/sources.list"), sources)?;
        Ok(Chroot { root: root.to_path_buf() })
    }

    /// `sh -c script` inside, as root, with a clean environment and `env`
    /// added, in a mount namespace of its own.
    fn command(&self, script: &str, env: &[&str]) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c", ENTER, "enter"])
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
    let Some(mirror) = source_of(&host_sources(), SUITE) else {
        bail!("no apt source of this machine offers `{SUITE}`: the chroot's packages would have no archive");
    };
    let step = Step::start(&format!("debootstrap --variant=minbase {SUITE}"));
    if base.exists() {
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

/// `rustc -vV`'s first line.
fn first_line(chroot: &Chroot) -> Result<String> {
    Ok(chroot.run("rustc -vV", &[])?.lines().next().unwrap_or_default().to_string())
}

/// `rustc -vV`'s first line is the build's.
fn identity(chroot: &Chroot, expected: &str) -> Result<String> {
    let first = first_line(chroot)?;
    ensure!(first == expected, "`rustc -vV` prints `{first}`, not `{expected}`");
    Ok(first)
}

/// Builds the library in the chroot, with the padding flag or without, and
/// copies the object to `out`.
fn object(chroot: &Chroot, padded: bool, out: &Path) -> Result<PathBuf> {
    chroot.write("/tmp/pfe/padded.rs", PADDED)?;
    let (flag, name) = if padded { ("-Zpatchable-function-entry=16,16", "padded.o") } else { ("", "plain.o") };
    chroot.run(
        &format!("cd /tmp/pfe && rustc -O --crate-type=lib --emit=obj {flag} padded.rs -o {name}"),
        &["RUSTC_BOOTSTRAP=1"],
    )?;
    let object = out.join(name);
    fs::copy(chroot.root.join("tmp/pfe").join(name), &object)?;
    Ok(object)
}

/// `pfe-check --expect 16,16` on `object`: what it said last, or its
/// refusal as the error.
fn audit(pfe_check: &Path, object: &Path) -> Result<String> {
    let said = cmd::output(Command::new(pfe_check).args(["--expect", "16,16"]).arg(object))?;
    Ok(said.lines().last().unwrap_or_default().to_string())
}

/// What an `apt-get -s` plan does to `package`: `None` if it leaves it.
fn plan_for<'a>(actions: &'a [Action], package: &str) -> Option<&'a Action> {
    actions.iter().find(|a| match a {
        Action::Remove { package: p, .. } | Action::Replace { package: p, .. } => p == package,
    })
}

/// What apt would do for `apt-get install ARGS` (simulated): its plan,
/// or, where it refuses, the packages of its unmet dependencies.
enum Plan {
    Actions(Vec<Action>),
    Refused(Vec<(String, String)>),
}

fn simulate(chroot: &Chroot, args: &str) -> Result<Plan> {
    let script = format!("apt-get -s -q --allow-downgrades install {args}");
    let out = chroot.output(&script, &["LC_ALL=C"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        return Ok(Plan::Actions(deps::simulated_actions(&stdout)));
    }
    let unmet = deps::unmet(&stdout);
    ensure!(!unmet.is_empty(), "`{script}` failed ({}) for another reason:\n{}", out.status, cmd::tail(&stdout, 10));
    Ok(Plan::Refused(unmet))
}

/// apt's plans for the ways today's archive can meet these packages:
/// returns one line each.
fn apt_view(chroot: &Chroot, version: &str, base_version: &str, std_runtime: &str) -> Result<Vec<String>> {
    let mut said = Vec::new();
    let ours = ["rustc", "libstd-rust-dev", std_runtime];
    let upgrade = chroot.run("apt-get -s -q upgrade", &["LC_ALL=C"])?;
    let actions = deps::simulated_actions(&upgrade);
    for package in ours {
        ensure!(plan_for(&actions, package).is_none(), "`apt-get upgrade` would change {package}:\n{upgrade}");
    }
    said.push("`apt-get upgrade` (bookworm, -updates, -security of today): leaves rustc and its std alone".to_string());

    let install = chroot.run("apt-get -s -q install rustc", &["LC_ALL=C"])?;
    ensure!(
        install.contains(&format!("rustc is already the newest version ({version})")),
        "`apt-get install rustc` would not keep {version}:\n{}",
        cmd::tail(&install, 10)
    );
    said.push(format!("`apt-get install rustc`: \"rustc is already the newest version ({version})\""));

    for (alone, pinned) in [("rustc", "libstd-rust-dev"), ("libstd-rust-dev", std_runtime)] {
        match simulate(chroot, &format!("{alone}={base_version}"))? {
            Plan::Refused(unmet) if unmet.iter().any(|(p, why)| p == alone && why.contains(pinned)) => {
                said.push(format!(
                    "`apt-get install {alone}={base_version}`: refused, `{}`",
                    unmet.iter().find(|(p, _)| p == alone).map_or("", |(_, why)| why.as_str())
                ))
            }
            Plan::Refused(unmet) => bail!("`apt-get install {alone}={base_version}` refused for another reason: {unmet:?}"),
            Plan::Actions(actions) => {
                // Refused or not, the archive's package must never be
                // planned beside ours at our version.
                let mixed = ours.iter().any(|p| plan_for(&actions, p).is_none());
                ensure!(!mixed, "`apt-get install {alone}={base_version}` mixes versions: {actions:?}");
                said.push(format!("`apt-get install {alone}={base_version}`: takes all three back together"));
            }
        }
    }

    let all: Vec<String> = ours.iter().map(|p| format!("{p}={base_version}")).collect();
    match simulate(chroot, &all.join(" "))? {
        Plan::Actions(actions) => {
            for package in ours {
                match plan_for(&actions, package) {
                    Some(Action::Replace { installed, new, .. }) if installed == version && new == base_version => {}
                    other => bail!("`apt-get install {}` plans {other:?} for {package}", all.join(" ")),
                }
            }
        }
        Plan::Refused(unmet) => bail!("`apt-get install {}` is refused: {unmet:?}", all.join(" ")),
    }
    said.push(format!("`apt-get install {}`: a downgrade of the three together", all.join(" ")));
    Ok(said)
}

pub fn run(ctx: &Ctx, meta: &super::Meta) -> Result<()> {
    let started = Instant::now();
    let base_version = meta.base.as_str();
    let build_dir = binary::dir(ctx);
    let record = fs::read_to_string(build_dir.join("record"))
        .with_context(|| format!("no binary build in {}: run `./x source-package --build` first", build_dir.display()))?;
    let field = |key: &str| {
        binary::record_field(&record, key)
            .map(str::to_string)
            .with_context(|| format!("{} has no `{key}`", build_dir.join("record").display()))
    };
    let source = field("source")?;
    let version = source.split_whitespace().nth(1).context("the record's `source` has no version")?.to_string();
    let version = version.as_str();
    let version_line = field("version-line")?;
    let series = field("series")?;
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
    let sources = chroot_sources(&host_sources())?;
    let base = base(ctx)?;
    let dir = ctx.cache.join("chroot");
    let out = dir.join("out");
    fs::create_dir_all(&out)?;
    let mut report = Vec::new();

    let step = Step::start("install the build's rustc into a fresh minimal Debian 12");
    let chroot = Chroot::fresh(&base, &dir.join("check"), &sources)?;
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
    ensure!(installed.lines().count() == 3, "dpkg-query lists `{installed}`");
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
    let accepted = audit(&pfe_check, &object(&chroot, true, &out)?)?;
    ensure!(
        audit(&pfe_check, &object(&chroot, false, &out)?).is_err(),
        "pfe-check --expect 16,16 accepts the object built without padding"
    );
    report.push(format!("pfe-check --expect 16,16 on an object built there: {accepted}; on it built plain: refused"));

    let stable = chroot.output("cd /tmp/pfe && rustc --emit=obj -Zpatchable-function-entry=16,16 hello.rs", &[])?;
    let refusal = String::from_utf8_lossy(&stable.stderr).into_owned();
    ensure!(
        !stable.status.success() && refusal.contains("only accepted on the nightly compiler"),
        "without RUSTC_BOOTSTRAP, -Z was not refused: {refusal}"
    );
    report.push("without RUSTC_BOOTSTRAP: \"the option `Z` is only accepted on the nightly compiler\"".to_string());
    report.extend(apt_view(&chroot, version, base_version, &std_runtime)?);
    let later = format!("{base_version}{}", super::STABLE_UPDATE);
    ensure!(deps::version_lt(version, &later)?, "{version} does not sort below {later}");
    report.push(format!(
        "Debian 12's next update of this release, {later}, sorts above {version} (dpkg): `apt-get upgrade` takes it once published"
    ));
    drop(chroot);
    step.done();

    let step = Step::start("control: the archive's rustc in another fresh chroot must fail the same checks");
    let control = Chroot::fresh(&base, &dir.join("control"), &sources)?;
    control.run_logged(
        "apt-get update -q && apt-get install -y -q --no-install-recommends rustc",
        "apt-get install rustc (the archive's)",
        &ctx.logs().join("chroot-control.log"),
    )?;
    let archive = control.run("dpkg-query -W -f '${Version}' rustc", &[])?;
    let bare = format!("rustc {}", super::release(base_version));
    let first = first_line(&control)?;
    ensure!(first == bare, "Debian's rustc {archive} prints `{first}`, not `{bare}`: the control ran no Debian rustc");
    ensure!(identity(&control, &version_line).is_err(), "the identity check passes Debian's rustc {archive}");
    let refused = match object(&control, true, &out) {
        Ok(_) => bail!("Debian's rustc {archive} took -Zpatchable-function-entry"),
        Err(err) => format!("{err:#}"),
    };
    ensure!(
        refused.contains("unknown debugging option: `patchable-function-entry`"),
        "Debian's rustc refused the padding for another reason: {refused}"
    );
    report.push(format!(
        "control, the archive's rustc {archive}: `rustc -vV` prints `{first}`; \"unknown debugging option: `patchable-function-entry`\""
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
    fn the_chroot_takes_the_hosts_own_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n\
                      Suites: bookworm-security\nComponents: main\n\nTypes: deb-src\nURIs: http://src.example/\n\
                      Suites: trixie\n";
        let one_line = "# deb http://old.example/debian trixie main\n\
                        deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian trixie main\n";
        let files = vec![
            ("/etc/apt/sources.list.d/debian.sources".to_string(), deb822.to_string()),
            ("/etc/apt/sources.list".to_string(), one_line.to_string()),
            ("/etc/apt/sources.list.d/x.sources.disabled-by-farm".to_string(), deb822.replace("mirror", "off")),
        ];
        let sources = deb_sources(&files);
        assert_eq!(source_of(&sources, "bookworm").as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(source_of(&sources, "trixie").as_deref(), Some("http://one.example/debian"));
        assert!(!sources.iter().any(|(uri, _)| uri.contains("off") || uri.contains("src.example")), "{sources:?}");
        assert_eq!(
            chroot_sources(&sources).unwrap(),
            "deb http://mirror.example/debian bookworm main\n\
             deb http://mirror.example/debian bookworm-updates main\n\
             deb http://security.example/debian-security bookworm-security main\n"
        );
        assert!(chroot_sources(&sources[..1]).is_err());
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
