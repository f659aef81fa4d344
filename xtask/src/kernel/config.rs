//! One kernel's `.config`: tinyconfig, the variant's fragment merged in,
//! every symbol of the fragment checked.

use super::arch::{ArchData, Variant};
use super::make::make;
use super::toolchain::Toolchain;
use super::tree::tree_key;
use super::Paths;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use crate::series::write_if_changed;
use anyhow::{bail, Context, Result};
use std::fs;
use std::process::Command;

/// The symbols of a fragment with the value each must have in `.config`
/// (`n` for `# CONFIG_X is not set`).
pub fn wanted(fragment: &str) -> Vec<(&str, &str)> {
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
pub fn config_value<'a>(config: &'a str, name: &str) -> &'a str {
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
pub fn configure(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Result<()> {
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
