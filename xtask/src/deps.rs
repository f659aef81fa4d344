//! Step 1: the Debian packages the build and the tests need, and a `deb-src`
//! entry for `apt-get source`, derived from the system's own `deb` entries.

use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
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

fn is_root() -> Result<bool> {
    Ok(cmd::output(Command::new("id").arg("-u"))?.trim() == "0")
}

fn apt_install(missing: &[String]) -> Result<()> {
    println!("    installing: {}", missing.join(" "));
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(missing),
    )
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
