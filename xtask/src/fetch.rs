//! Step 2: the pinned source package, downloaded with `apt-get source` and
//! checked against the SHA-256 sums in `pins/base.sha256`.

use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian 12's rustc source package: the base of the series.
pub const SOURCE_PACKAGE: &str = "rustc=1.63.0+dfsg1-2";
pub const ORIG_TARBALL: &str = "rustc_1.63.0+dfsg1.orig.tar.xz";
pub const DEBIAN_TARBALL: &str = "rustc_1.63.0+dfsg1-2.debian.tar.xz";

/// `(file name, sha256)` from `pins/base.sha256`.
pub fn pins(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let path = ctx.root.join("pins/base.sha256");
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut pins = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(sum), Some(name), None) if sum.len() == 64 => {
                pins.push((name.to_string(), sum.to_lowercase()))
            }
            _ => bail!("{}: malformed line `{line}`", path.display()),
        }
    }
    Ok(pins)
}

/// The SHA-256 of a file, from coreutils' `sha256sum` (in every Debian
/// system: the driver carries no hashing crate for three files and a digest).
pub fn sha256(path: &Path) -> Result<String> {
    hex_sum(&cmd::output(Command::new("sha256sum").arg("--").arg(path))?)
}

/// The SHA-256 of `data`, through `sha256sum`'s standard input.
pub fn sha256_of(data: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start `sha256sum`")?;
    // sha256sum writes nothing before the end of its input: no deadlock.
    let written = child.stdin.take().context("no stdin")?.write_all(data);
    let out = child.wait_with_output().context("waiting for `sha256sum`")?;
    if !out.status.success() {
        bail!("`sha256sum` failed ({})\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    written.context("writing to `sha256sum`")?;
    hex_sum(&String::from_utf8_lossy(&out.stdout))
}

/// The sum from `sha256sum`'s `SUM  NAME` line.
fn hex_sum(line: &str) -> Result<String> {
    match line.split_whitespace().next() {
        Some(sum) if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(sum.to_lowercase()),
        _ => bail!("unexpected output of sha256sum: `{}`", line.trim()),
    }
}

/// Checks every pinned file; a file with the wrong sum is removed (so the
/// next run downloads it again) and named in the error.
fn verify(ctx: &Ctx, pins: &[(String, String)]) -> Result<()> {
    for (name, want) in pins {
        let path = ctx.downloads().join(name);
        let got = sha256(&path)?;
        if &got != want {
            fs::remove_file(&path).ok();
            bail!(
                "{name}: SHA-256 mismatch, refused and removed\n  expected {want}\n  got      {got}\n\
                 (pinned in pins/base.sha256; run the command again to download it anew)"
            );
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let pins = pins(ctx)?;
    let all_there = pins.iter().all(|(name, _)| ctx.downloads().join(name).is_file());
    if all_there {
        verify(ctx, &pins)?;
        Step::skip("fetch the source package", "present and verified");
        return Ok(());
    }
    let step = Step::start(&format!("fetch the source package {SOURCE_PACKAGE}"));
    fs::create_dir_all(ctx.downloads())?;
    cmd::output(
        Command::new("apt-get")
            .args(["source", "--download-only", SOURCE_PACKAGE])
            .current_dir(ctx.downloads()),
    )
    .context("apt-get source needs a deb-src entry: `./x deps` adds one")?;
    verify(ctx, &pins)?;
    step.done();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_180_examples() {
        assert_eq!(sha256_of(b"abc").unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_of(b"").unwrap(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let file = std::env::temp_dir().join(format!("xtask-sha256-{}", std::process::id()));
        fs::write(&file, b"abc").unwrap();
        let sum = sha256(&file);
        fs::remove_file(&file).ok();
        assert_eq!(sum.unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
