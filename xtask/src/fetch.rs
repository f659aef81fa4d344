//! Step 2: the pinned source package, downloaded with `apt-get source` and
//! checked against the SHA-256 sums in `pins/base.sha256`.

use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

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

pub fn sha256(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
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
