//! Where things live: the project root (anchored at this crate, never the
//! caller's working directory) and the cache outside the clone.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The host and the cross target whose std the driver builds.
pub const HOST: &str = "x86_64-unknown-linux-gnu";
pub const CROSS: &str = "aarch64-unknown-linux-gnu";
/// The name of the rustup toolchain the driver links.
pub const TOOLCHAIN: &str = "pfe";

pub struct Ctx {
    /// The repository: `patches/`, `pins/`, `config.example.toml`, tests.
    pub root: PathBuf,
    /// `${RUSTC_PFE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/rustc-pfe}`.
    pub cache: PathBuf,
}

impl Ctx {
    /// The root comes from `./x` (`RUSTC_PFE_ROOT`), else from where this
    /// crate was built.
    pub fn new() -> Result<Ctx> {
        let root = match std::env::var_os("RUSTC_PFE_ROOT").filter(|r| !r.is_empty()) {
            Some(root) => PathBuf::from(root),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .context("the driver crate has no parent directory")?
                .to_path_buf(),
        };
        if !root.join("patches/series").is_file() {
            bail!("{} is not a rustc-pfe checkout (no patches/series)", root.display());
        }
        Ok(Ctx { root, cache: cache_dir()? })
    }

    pub fn patches(&self) -> PathBuf {
        self.root.join("patches")
    }
    pub fn downloads(&self) -> PathBuf {
        self.cache.join("downloads")
    }
    /// The prepared rustc tree: a git repository whose tag `base` is the
    /// Debian-prepared source and whose later commits are our patches.
    pub fn src(&self) -> PathBuf {
        self.cache.join("src")
    }
    pub fn logs(&self) -> PathBuf {
        self.cache.join("logs")
    }
    /// Small records the steps leave to know when they are current.
    pub fn state(&self) -> PathBuf {
        self.cache.join("state")
    }
    pub fn stage1(&self) -> PathBuf {
        self.src().join("build").join(HOST).join("stage1")
    }
    /// The directory linked as the rustup toolchain: stage1 plus a cargo.
    pub fn toolchain(&self) -> PathBuf {
        self.cache.join("toolchain")
    }
    pub fn stage1_rustc(&self) -> PathBuf {
        self.stage1().join("bin").join("rustc")
    }
}

/// A fresh scratch directory for one test, `$RUSTC_PFE_HOME/e2e/NAME`:
/// for the end-to-end tests and the kernel series' check, which `./x test`
/// runs.
#[cfg(any(test, feature = "bench"))]
pub fn scratch(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let dir = ctx.cache.join("e2e").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RUSTC_PFE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("rustc-pfe"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("rustc-pfe")),
        None => bail!("cannot place the cache: set RUSTC_PFE_HOME (or XDG_CACHE_HOME or HOME)"),
    }
}
