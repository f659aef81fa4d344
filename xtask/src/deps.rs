//! Step 1: the Debian packages the build and the tests need, and a `deb-src`
//! entry for `apt-get source`, derived from the system's own `deb` entries.
//! Every install is simulated first: the driver never lets apt remove or
//! downgrade a package installed here (`safe_requests`).

use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// What every command needs: Debian's rustc 1.63 and cargo 1.65 are stage0
/// (and the toolchain's cargo); LLVM 14 is the system LLVM; the cross gcc
/// links aarch64 std and test programs, qemu runs them; clang-14 and gcc are
/// the references of the differential tests; valgrind's callgrind counts
/// `./x bench`'s instructions; Linux 6.1's source and `patch` for the check
/// that the kernel series applies.
pub const PACKAGES: &[&str] = &[
    "rustc",
    "cargo",
    "llvm-14-dev",
    "llvm-14-tools",
    "quilt",
    "cmake",
    "pkg-config",
    "zlib1g-dev",
    "liblzma-dev",
    "python3",
    "git",
    "xz-utils",
    "gcc",
    "gcc-aarch64-linux-gnu",
    "g++-aarch64-linux-gnu",
    "binutils-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "qemu-user",
    "clang-14",
    "lld-14",
    "valgrind",
    "linux-source-6.1",
    "patch",
];

/// Where the derived `deb-src` entries go.
const SRC_LIST: &str = "/etc/apt/sources.list.d/rustc-pfe-src.sources";

pub fn run(_ctx: &Ctx) -> Result<()> {
    let missing = missing_packages(PACKAGES)?;
    let need_src = !has_deb_src()?;
    if missing.is_empty() && !need_src {
        Step::skip("install Debian packages", "all installed and deb-src present");
        return Ok(());
    }
    let step = Step::start("install Debian packages");
    if which("apt-get").is_none() {
        bail!("apt-get not found: the build needs a Debian 12 system (packages: {})", PACKAGES.join(" "));
    }
    if !is_root()? {
        bail!(
            "installing packages needs root; run as root, or install them yourself:\n  \
             apt-get install {}\nand add deb-src entries for apt-get source",
            missing.join(" ")
        );
    }
    if need_src {
        let entries = derive_deb_src()?;
        if entries.is_empty() {
            bail!("no Debian `deb` entry found in /etc/apt to derive a `deb-src` entry from");
        }
        fs::write(SRC_LIST, entries).with_context(|| format!("cannot write {SRC_LIST}"))?;
        println!("    wrote {SRC_LIST} (deb-src for the system's Debian deb entries)");
    }
    cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    step.done();
    Ok(())
}

/// Installs those of `packages` that are missing, for a command with needs
/// beyond the build's (`./x kernel`); `step` names it.
pub fn install(step: &str, packages: &[&str]) -> Result<()> {
    let missing = missing_packages(packages)?;
    if missing.is_empty() {
        Step::skip(step, "all installed");
        return Ok(());
    }
    let step = Step::start(step);
    if which("apt-get").is_none() || !is_root()? {
        bail!("missing packages; install them (as root) with:\n  apt-get install {}", missing.join(" "));
    }
    apt_install(&missing)?;
    step.done();
    Ok(())
}

/// Installs what building the source package `dsc`'s architecture-dependent
/// packages needs (`apt-get build-dep --arch-only`, as `dpkg-buildpackage
/// -B` checks), as `install` does for packages: apt's simulation first, and
/// nothing is changed if it would remove (a `Build-Conflicts`, say) or
/// downgrade a package installed here; the install itself runs with
/// `--no-remove`.
pub fn install_build_deps(step: &str, dsc: &Path) -> Result<()> {
    const BUILD_DEP: &[&str] = &["build-dep", "-q", "--arch-only", "--no-install-recommends"];
    let mut command = Command::new("apt-get");
    command.env("LC_ALL", "C").args(BUILD_DEP).arg("-s").arg(dsc);
    let out = command.output().with_context(|| format!("cannot start `{}`", cmd::show(&command)))?;
    let simulation = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}\n{}",
            cmd::show(&command),
            out.status,
            cmd::tail(&simulation, 15),
            cmd::tail(&String::from_utf8_lossy(&out.stderr), 10)
        );
    }
    let lost = losses(&simulation)?;
    if !lost.is_empty() {
        let lines: Vec<String> = lost.iter().map(|l| format!("  {l}")).collect();
        bail!(
            "`apt-get build-dep {}` would change packages installed here; nothing was changed:\n{}",
            dsc.display(),
            lines.join("\n")
        );
    }
    if !simulation.lines().any(|l| l.starts_with("Inst ")) {
        Step::skip(step, "all installed");
        return Ok(());
    }
    let step = Step::start(step);
    if !is_root()? {
        bail!("missing build dependencies; install them (as root) with:\n  apt-get build-dep --arch-only {}", dsc.display());
    }
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(BUILD_DEP)
            .args(["-y", "--no-remove"])
            .arg(dsc),
    )?;
    step.done();
    Ok(())
}

fn is_root() -> Result<bool> {
    Ok(cmd::output(Command::new("id").arg("-u"))?.trim() == "0")
}

/// How every `apt-get install` of the driver runs, and its simulation too.
const APT_INSTALL: &[&str] = &["install", "-y", "-q", "--no-install-recommends"];

fn apt_install(missing: &[String]) -> Result<()> {
    let requests = safe_requests(missing)?;
    println!("    installing: {}", requests.join(" "));
    cmd::run(Command::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive").args(APT_INSTALL).args(&requests))
}

/// What an `apt-get install` would do to a package installed here that the
/// driver never lets it do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub package: String,
    /// The version installed now.
    pub installed: String,
    pub fate: Fate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Removed,
    /// Replaced by this older version.
    Downgraded(String),
    /// In the way of what was asked for: apt gave up, and its line about
    /// the package's unmet dependency says why. Apt changes nothing then,
    /// but the same origin may still get the packages installed.
    InTheWay(String),
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (package, installed) = (&self.package, &self.installed);
        match &self.fate {
            Fate::Removed => write!(f, "{package} {installed} would be removed"),
            Fate::Downgraded(to) => write!(f, "{package} would be downgraded from {installed} to {to}"),
            Fate::InTheWay(why) => write!(f, "{package} {installed} is in the way (apt: `{why}`)"),
        }
    }
}

/// A line of `apt-get -s` that touches an installed package: `Remv P [old]`
/// (or `Purg`), or `Inst P [old] (new ...)`. New packages (`Inst P (new
/// ...)`, no `[old]`) and `Conf` lines are not listed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Remove { package: String, installed: String },
    Replace { package: String, installed: String, new: String },
}

pub(crate) fn simulated_actions(text: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let (Some(kind), Some(package), Some(rest)) = (words.next(), words.next(), words.next()) else { continue };
        let Some((installed, rest)) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else { continue };
        let (package, installed) = (package.to_string(), installed.to_string());
        match kind {
            "Remv" | "Purg" => actions.push(Action::Remove { package, installed }),
            "Inst" => {
                let new = rest.trim_start().strip_prefix('(').and_then(|r| r.split_whitespace().next());
                if let Some(new) = new {
                    actions.push(Action::Replace { package, installed, new: new.to_string() });
                }
            }
            _ => {}
        }
    }
    actions
}

/// The removals and downgrades in the output of a simulation apt could
/// plan; versions are compared by dpkg itself.
fn losses(simulation: &str) -> Result<Vec<Loss>> {
    let mut losses = Vec::new();
    for action in simulated_actions(simulation) {
        match action {
            Action::Remove { package, installed } => losses.push(Loss { package, installed, fate: Fate::Removed }),
            Action::Replace { package, installed, new } => {
                if version_lt(&new, &installed)? {
                    losses.push(Loss { package, installed, fate: Fate::Downgraded(new) });
                }
            }
        }
    }
    Ok(losses)
}

/// The packages of apt's "The following packages have unmet dependencies:"
/// block, each with its first line (` P : Breaks: Q (...) but V is to be
/// installed`), as apt prints it when it gives up.
pub(crate) fn unmet(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let block = text.lines().skip_while(|l| !l.starts_with("The following packages have unmet dependencies"));
    for line in block.skip(1) {
        if !line.starts_with(' ') {
            break;
        }
        if let Some((package, _)) = line.trim().split_once(" : ") {
            if !found.iter().any(|(p, _)| p == package) {
                found.push((package.to_string(), line.trim().to_string()));
            }
        }
    }
    found
}

/// `dpkg --compare-versions a lt b`.
pub fn version_lt(a: &str, b: &str) -> Result<bool> {
    let mut command = Command::new("dpkg");
    command.args(["--compare-versions", a, "lt", b]);
    let out = command.output().with_context(|| format!("cannot start `{}`", cmd::show(&command)))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => {
            let why = String::from_utf8_lossy(&out.stderr);
            bail!("`{}` failed ({}): {}", cmd::show(&command), out.status, why.trim())
        }
    }
}

/// `apt-cache policy PACKAGE`: apt's view, the same as its simulation's.
fn apt_policy(package: &str) -> Result<String> {
    cmd::output(Command::new("apt-cache").env("LC_ALL", "C").args(["policy", package]))
}

/// The installed version in `apt-cache policy` output, if any.
fn policy_installed(text: &str) -> Option<String> {
    let version = text.lines().find_map(|l| l.trim().strip_prefix("Installed: "))?.trim();
    (version != "(none)" && !version.is_empty()).then(|| version.to_string())
}

/// What `apt-get install` of `requests`, with the driver's options, would
/// do to installed packages: apt's own simulation (`-s`), which changes
/// nothing. When apt gives up, the installed packages its unmet
/// dependencies name are in the way; any other failure is an error.
fn simulate(requests: &[String]) -> Result<Vec<Loss>> {
    let mut command = Command::new("apt-get");
    command.env("LC_ALL", "C").args(APT_INSTALL).arg("-s").args(requests);
    let out = command.output().with_context(|| format!("cannot start `{}`", cmd::show(&command)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        return losses(&stdout);
    }
    let in_the_way: Vec<Loss> = unmet(&stdout)
        .into_iter()
        .filter_map(|(package, why)| {
            let installed = policy_installed(&apt_policy(&package).ok()?)?;
            Some(Loss { package, installed, fate: Fate::InTheWay(why) })
        })
        .collect();
    if in_the_way.is_empty() {
        bail!(
            "`{}` failed ({})\n{}\n{}",
            cmd::show(&command),
            out.status,
            cmd::tail(&stdout, 10),
            cmd::tail(&String::from_utf8_lossy(&out.stderr), 10)
        );
    }
    Ok(in_the_way)
}

/// The packages to ask `apt-get install` for: `missing`, as long as apt then
/// removes and downgrades nothing installed here; else an error that says
/// what apt would do, and nothing is changed.
///
/// Seen in the field: qemu-utils from bookworm-backports was installed, and
/// Debian 12's qemu-system-x86 depends on a qemu-system-common that this
/// qemu-utils `Breaks`, so `apt-get install qemu-system-x86` removed
/// qemu-utils (`testdata/apt/qemu-system-x86.remove.sim`: the backport was
/// in no suite apt knew). With bookworm-backports in apt's sources apt
/// gives up instead (`qemu-system-x86.blocked.sim`), and asked for
/// `qemu-system-x86/bookworm-backports` it installs qemu-system-x86 and its
/// dependencies from there, losing nothing (`...-backports.sim`). So the
/// clean way keeps the user's choice of origin: when the installed version
/// (or a newer one) is in a suite apt's sources list (`apt-cache policy`),
/// the requested packages that cause the loss are asked for from that
/// suite, and that is used only if the simulation then loses nothing. Not
/// `-t SUITE`: it would prefer the whole suite for every package of the
/// install, not only these. Otherwise, the driver refuses: the safety net.
fn safe_requests(missing: &[String]) -> Result<Vec<String>> {
    let losses = simulate(missing)?;
    if losses.is_empty() {
        return Ok(missing.to_vec());
    }
    let culprits = culprits(missing, &losses);
    let mut requests = missing.to_vec();
    let mut moved = Vec::new();
    let mut origins = BTreeMap::new();
    for loss in &losses {
        let table = policy(&apt_policy(&loss.package)?);
        let suite = origin(&table, &loss.installed, &|v| version_lt(&loss.installed, v))?;
        if let Some(suite) = &suite {
            for culprit in culprits.get(&loss.package).into_iter().flatten() {
                if let Some(request) = requests.iter_mut().find(|r| *r == culprit) {
                    *request = format!("{culprit}/{suite}");
                    moved.push(request.clone());
                }
            }
        }
        origins.insert(loss.package.clone(), suite);
    }
    let mut retried = None;
    if !moved.is_empty() {
        match simulate(&requests) {
            Ok(again) if again.is_empty() => {
                for loss in &losses {
                    println!("    {loss}");
                }
                let moved = moved.join(" ");
                println!("    so asking for {moved}, the origin of what is installed: apt then loses nothing");
                return Ok(requests);
            }
            result => retried = Some((moved, result)),
        }
    }
    bail!(refusal(missing, &losses, &culprits, &origins, retried))
}

/// Which of the requested packages cause each loss, by package: those
/// whose simulation alone has it. Only an attribution for the message: a
/// simulation that fails counts as none.
fn culprits(missing: &[String], losses: &[Loss]) -> BTreeMap<String, Vec<String>> {
    let mut culprits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in missing {
        let alone = if missing.len() == 1 {
            losses.to_vec()
        } else {
            simulate(std::slice::from_ref(request)).unwrap_or_default()
        };
        for loss in alone.iter().filter(|l| losses.iter().any(|m| m.package == l.package)) {
            culprits.entry(loss.package.clone()).or_default().push(request.clone());
        }
    }
    culprits
}

/// `apt-cache policy PACKAGE`'s version table: each version with the
/// suites that offer it (`bookworm-backports` from `500 URI
/// bookworm-backports/main amd64 Packages`); the dpkg status file, where an
/// installed version is always listed, is not a suite.
fn policy(text: &str) -> Vec<(String, Vec<String>)> {
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let version_line =
            line.strip_prefix(" *** ").or_else(|| line.strip_prefix("     ").filter(|rest| !rest.starts_with(' ')));
        if let Some(rest) = version_line {
            if let Some(version) = rest.split_whitespace().next() {
                table.push((version.to_string(), Vec::new()));
            }
        } else if line.starts_with("        ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let (Some((_, suites)), [_, uri, dist, ..]) = (table.last_mut(), words.as_slice()) {
                let suite = dist.split('/').next().unwrap_or(dist);
                if !uri.starts_with('/') && !suite.is_empty() && suite != "." && !suites.iter().any(|s| s == suite) {
                    suites.push(suite.to_string());
                }
            }
        }
    }
    table
}

/// The suite to take the requested packages from so that `installed` stays:
/// one offering that very version, else one offering a newer one (apt may
/// upgrade it; `is_newer` says whether a version is newer).
fn origin(
    table: &[(String, Vec<String>)],
    installed: &str,
    is_newer: &dyn Fn(&str) -> Result<bool>,
) -> Result<Option<String>> {
    if let Some((_, suites)) = table.iter().find(|(v, s)| v == installed && !s.is_empty()) {
        return Ok(suites.first().cloned());
    }
    for (version, suites) in table {
        if !suites.is_empty() && is_newer(version)? {
            return Ok(suites.first().cloned());
        }
    }
    Ok(None)
}

/// The error when apt would remove or downgrade something, or cannot
/// install what was asked for beside what is installed.
fn refusal(
    missing: &[String],
    losses: &[Loss],
    culprits: &BTreeMap<String, Vec<String>>,
    origins: &BTreeMap<String, Option<String>>,
    retried: Option<(Vec<String>, Result<Vec<Loss>>)>,
) -> String {
    let mut text = String::from(
        "apt-get cannot install the packages without removing or downgrading packages installed here, \
         which the driver never lets it do; nothing was changed:\n",
    );
    for loss in losses {
        text.push_str(&format!("  {loss}"));
        match culprits.get(&loss.package) {
            Some(by) => text.push_str(&format!(", for {} (apt says so of it alone)", by.join(", "))),
            None => text.push_str(
                "; which requested package pulls that in is not clear from apt's output (none does alone)",
            ),
        }
        text.push('\n');
        if let Some(None) = origins.get(&loss.package) {
            text.push_str(&format!(
                "    no suite in apt's sources offers {} {} or newer \
                 (`apt-cache policy {}` lists it only as installed)",
                loss.package, loss.installed, loss.package
            ));
            if loss.installed.contains("~bpo") {
                text.push_str(
                    "; it is a Debian backport: with its backports suite in apt's sources (and \
                     `apt-get update`), the driver asks for the packages that need it from there",
                );
            }
            text.push('\n');
        }
    }
    match retried {
        Some((moved, Ok(again))) => {
            let again: Vec<String> = again.iter().map(|l| l.to_string()).collect();
            text.push_str(&format!("  asked for as {}, apt still says: {}\n", moved.join(" "), again.join("; ")));
        }
        Some((moved, Err(err))) => text.push_str(&format!("  asked for as {}: {err:#}\n", moved.join(" "))),
        None => {}
    }
    text.push_str(&format!(
        "Install them yourself, deciding what to keep, then run again:\n  apt-get install {}",
        missing.join(" ")
    ));
    text
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn missing_packages(packages: &[&str]) -> Result<Vec<String>> {
    if which("dpkg-query").is_none() {
        return Ok(packages.iter().map(|p| p.to_string()).collect());
    }
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Status}\n"])
        .args(packages)
        .output()
        .context("cannot run dpkg-query")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(packages
        .iter()
        .filter(|p| !text.lines().any(|l| l == format!("{p} installed")))
        .map(|p| p.to_string())
        .collect())
}

fn apt_files() -> Vec<std::path::PathBuf> {
    let mut files = vec![Path::new("/etc/apt/sources.list").to_path_buf()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files
        .into_iter()
        .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("list" | "sources")))
        .collect()
}

fn has_deb_src() -> Result<bool> {
    for file in apt_files() {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let found = text.lines().any(|l| {
            let l = l.trim();
            l.starts_with("deb-src ")
                || (l.starts_with("Types:") && l.split_whitespace().any(|t| t == "deb-src"))
        });
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A Debian archive entry (not a third-party repository, which may have no
/// sources): signed by Debian's keyring or served from a `/debian` or
/// `/debian-security` path.
fn is_debian_archive(uri: &str, signed_by: &str) -> bool {
    let uri = uri.trim_end_matches('/');
    signed_by.contains("debian-archive-keyring")
        || uri.ends_with("/debian")
        || uri.ends_with("/debian-security")
}

/// `deb-src` entries with the same URIs, suites and components as the
/// system's Debian `deb` entries, in deb822 form. No host name is written
/// here: every one comes from the system's configuration.
fn derive_deb_src() -> Result<String> {
    let mut out = Vec::new();
    for file in apt_files() {
        let text = fs::read_to_string(&file).unwrap_or_default();
        if file.extension().and_then(|e| e.to_str()) == Some("sources") {
            for stanza in text.split("\n\n") {
                let lines: Vec<&str> =
                    stanza.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
                let field = |name: &str| {
                    lines
                        .iter()
                        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                        .map(str::trim)
                        .unwrap_or("")
                };
                let types = field("Types");
                if !types.split_whitespace().any(|t| t == "deb") || field("Enabled") == "no" {
                    continue;
                }
                if !field("URIs").split_whitespace().any(|u| is_debian_archive(u, field("Signed-By"))) {
                    continue;
                }
                let converted: Vec<String> = lines
                    .iter()
                    .map(|l| if l.starts_with("Types:") { "Types: deb-src".to_string() } else { l.to_string() })
                    .collect();
                out.push(converted.join("\n"));
            }
        } else {
            for line in text.lines() {
                let line = line.trim();
                let Some(rest) = line.strip_prefix("deb ") else { continue };
                let mut rest = rest.trim();
                let mut options = "";
                if rest.starts_with('[') {
                    if let Some(end) = rest.find(']') {
                        options = &rest[1..end];
                        rest = rest[end + 1..].trim();
                    }
                }
                let parts: Vec<&str> = rest.split_whitespace().collect();
                if parts.len() < 3 || !is_debian_archive(parts[0], options) {
                    continue;
                }
                let mut stanza = format!(
                    "Types: deb-src\nURIs: {}\nSuites: {}\nComponents: {}",
                    parts[0],
                    parts[1],
                    parts[2..].join(" ")
                );
                if let Some(key) = options.split_whitespace().find_map(|o| o.strip_prefix("signed-by=")) {
                    stanza.push_str(&format!("\nSigned-By: {key}"));
                }
                out.push(stanza);
            }
        }
    }
    Ok(if out.is_empty() { String::new() } else { out.join("\n\n") + "\n" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real `apt-get -s` output (`xtask/testdata/apt/`; each file's header
    /// says what produced it).
    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/apt").join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    const QEMU_UTILS: &str = "1:10.0.2+ds-2+deb13u1~bpo12+1";

    #[test]
    fn a_removal_in_apts_simulation_is_a_loss() {
        let text = fixture("qemu-system-x86.remove.sim");
        let removed = Action::Remove { package: "qemu-utils".into(), installed: QEMU_UTILS.into() };
        assert_eq!(simulated_actions(&text), [removed]);
        let losses = losses(&text).unwrap();
        assert_eq!(losses, [Loss { package: "qemu-utils".into(), installed: QEMU_UTILS.into(), fate: Fate::Removed }]);
        assert_eq!(losses[0].to_string(), format!("qemu-utils {QEMU_UTILS} would be removed"));
    }

    #[test]
    fn a_downgrade_in_apts_simulation_is_a_loss() {
        let losses = losses(&fixture("osslsigncode.downgrade.sim")).unwrap();
        let loss = Loss {
            package: "osslsigncode".into(),
            installed: "2.9-1~bpo12+1".into(),
            fate: Fate::Downgraded("2.5-4".into()),
        };
        assert_eq!(losses, [loss]);
        assert_eq!(losses[0].to_string(), "osslsigncode would be downgraded from 2.9-1~bpo12+1 to 2.5-4");
    }

    #[test]
    fn upgrades_and_new_packages_are_no_loss() {
        let text = fixture("apt.upgrade.sim");
        let replaced: Vec<_> = simulated_actions(&text)
            .into_iter()
            .map(|a| match a {
                Action::Replace { package, installed, new } => format!("{package} {installed} {new}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(replaced, ["libapt-pkg6.0 2.6.1 2.6.2", "apt 2.6.1 2.6.2", "apt-transport-https 2.6.1 2.6.2"]);
        assert_eq!(losses(&text).unwrap(), []);
    }

    #[test]
    fn an_installed_package_in_the_way_is_read_from_apts_unmet_dependencies() {
        let text = fixture("qemu-system-x86.blocked.sim");
        assert_eq!(simulated_actions(&text), []);
        assert_eq!(
            unmet(&text),
            [(
                "qemu-utils".to_string(),
                "qemu-utils : Breaks: qemu-system-common (< 1:8.0+dfsg-5~) but 1:7.2+dfsg-7+deb12u18+b3 is to be installed"
                    .to_string()
            )]
        );
        let why = Fate::InTheWay("qemu-utils : Breaks: ...".into());
        let loss = Loss { package: "qemu-utils".into(), installed: QEMU_UTILS.into(), fate: why };
        let shown = format!("qemu-utils {QEMU_UTILS} is in the way (apt: `qemu-utils : Breaks: ...`)");
        assert_eq!(loss.to_string(), shown);
    }

    #[test]
    fn at_the_backports_origin_nothing_is_lost() {
        let text = fixture("qemu-system-x86-backports.sim");
        assert_eq!(unmet(&text), []);
        // seabios is upgraded from backports, which is no loss.
        assert_eq!(simulated_actions(&text).len(), 1);
        assert_eq!(losses(&text).unwrap(), []);
    }

    #[test]
    fn dpkg_orders_the_versions() {
        assert!(version_lt("1:7.2+dfsg-7+deb12u18+b3", QEMU_UTILS).unwrap());
        assert!(!version_lt(QEMU_UTILS, QEMU_UTILS).unwrap());
        assert!(version_lt("2.5-4", "2.9-1~bpo12+1").unwrap());
        assert!(version_lt("1:", "1").is_err());
    }

    /// `apt-cache policy qemu-utils` as apt 2.6 printed it here, the
    /// archive's address replaced: the backport known only from dpkg's
    /// status file, and (in the private apt state of
    /// `qemu-system-x86.blocked.sim`) with bookworm-backports in the sources,
    /// where the installed version is listed under that suite too.
    const POLICY_STATUS_ONLY: &str = "\
qemu-utils:
  Installed: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Candidate: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 /var/lib/dpkg/status
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://archive.example/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
        500 http://archive.example/debian-security bookworm-security/main amd64 Packages
";

    const POLICY_BACKPORTS: &str = "\
qemu-utils:
  Installed: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Candidate: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 http://archive.example/debian bookworm-backports/main amd64 Packages
        100 /var/lib/dpkg/status
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://archive.example/debian bookworm/main amd64 Packages
";

    #[test]
    fn the_origin_is_the_suite_that_offers_the_installed_version() {
        let newer = |v: &str| version_lt(QEMU_UTILS, v);
        let table = policy(POLICY_STATUS_ONLY);
        let versions: Vec<&str> = table.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(versions, [QEMU_UTILS, "1:7.2+dfsg-7+deb12u18+b3", "1:7.2+dfsg-7+deb12u15"]);
        assert!(table[0].1.is_empty(), "the status file is no suite: {table:?}");
        assert_eq!(policy_installed(POLICY_STATUS_ONLY).as_deref(), Some(QEMU_UTILS));
        assert_eq!(policy_installed("qemu-utils:\n  Installed: (none)\n  Candidate: 1:7.2\n"), None);
        assert_eq!(table[2].1, ["bookworm-security"]);
        assert_eq!(origin(&table, QEMU_UTILS, &newer).unwrap(), None);

        let table = policy(POLICY_BACKPORTS);
        assert_eq!(origin(&table, QEMU_UTILS, &newer).unwrap().as_deref(), Some("bookworm-backports"));
        // A newer backport than the installed one fits too (apt upgrades it).
        let newer_backport = ("1:10.0.3+ds-1~bpo12+1".to_string(), vec!["bookworm-backports".to_string()]);
        let table = vec![(QEMU_UTILS.to_string(), vec![]), newer_backport];
        assert_eq!(origin(&table, QEMU_UTILS, &newer).unwrap().as_deref(), Some("bookworm-backports"));
    }

    #[test]
    fn the_refusal_says_what_would_be_lost_for_which_request() {
        let missing = ["qemu-system-x86".to_string(), "cpio".to_string()];
        let losses = losses(&fixture("qemu-system-x86.remove.sim")).unwrap();
        let culprits = BTreeMap::from([("qemu-utils".to_string(), vec!["qemu-system-x86".to_string()])]);
        let origins = BTreeMap::from([("qemu-utils".to_string(), None)]);
        let text = refusal(&missing, &losses, &culprits, &origins, None);
        assert!(text.contains(&format!(
            "\n  qemu-utils {QEMU_UTILS} would be removed, for qemu-system-x86 (apt says so of it alone)\n"
        )), "{text}");
        assert!(text.contains("it is a Debian backport"), "{text}");
        assert!(text.ends_with("\n  apt-get install qemu-system-x86 cpio"), "{text}");

        let text = refusal(&missing, &losses, &BTreeMap::new(), &BTreeMap::new(), None);
        assert!(text.contains("not clear from apt's output (none does alone)"), "{text}");
        let retried = Some((vec!["qemu-system-x86/bookworm-backports".to_string()], Ok(losses.clone())));
        let origins = BTreeMap::from([("qemu-utils".to_string(), Some("bookworm-backports".to_string()))]);
        let text = refusal(&missing, &losses, &culprits, &origins, retried);
        assert!(text.contains("asked for as qemu-system-x86/bookworm-backports, apt still says: qemu-utils"), "{text}");
        assert!(!text.contains("no suite in apt's sources"), "{text}");
    }
}
