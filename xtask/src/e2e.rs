//! End-to-end tests: the built toolchain on real inputs, checked at the
//! assembly, object and run-time level. Sources live in `tests/e2e/`.

use crate::cmd;
use crate::paths::{Ctx, TOOLCHAIN};
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

pub type Test = fn(&Ctx) -> Result<()>;

pub const TESTS: &[(&str, Test)] = &[
    ("e2e: rustc +pfe -vV is 1.63.0 with LLVM 14", toolchain_version),
    ("e2e: -Zpatchable-function-entry=3,2 --emit=asm pads every function", asm_3_2),
    ("e2e: without the flag no function is padded", asm_unpadded),
    ("e2e: cargo +pfe build with RUSTFLAGS pads the crate", cargo_build),
];

fn source(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.root.join("tests/e2e").join(name)
}

/// A fresh scratch directory for one test.
fn scratch(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let dir = ctx.cache.join("e2e").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The stage1 rustc, called directly (not through rustup) unless a test is
/// about rustup.
pub fn rustc(ctx: &Ctx) -> Command {
    Command::new(ctx.toolchain().join("bin/rustc"))
}

fn toolchain_version(_ctx: &Ctx) -> Result<()> {
    let out = cmd::output(Command::new("rustc").arg(format!("+{TOOLCHAIN}")).arg("-vV"))?;
    ensure!(out.contains("release: 1.63.0"), "not rustc 1.63.0:\n{out}");
    ensure!(out.contains("LLVM version: 14."), "not LLVM 14:\n{out}");
    Ok(())
}

/// One function of an assembly listing: the instructions right before its
/// label (back to the previous directive) and right after it.
#[derive(Debug)]
pub struct AsmFunction {
    pub name: String,
    pub nops_before: usize,
    pub nops_after: usize,
    /// The label the function's record points at, if any.
    pub record: Option<String>,
    /// The label right before the prefix nops, if any.
    pub prefix_label: Option<String>,
}

/// Reads the functions (`.type name,@function`) of an x86_64 or aarch64
/// assembly listing with their nops and `__patchable_function_entries`
/// records.
pub fn asm_functions(asm: &str) -> Vec<AsmFunction> {
    let lines: Vec<&str> = asm.lines().map(str::trim).collect();
    let is_nop = |l: &str| l == "nop" || l.starts_with("nop\t") || l.starts_with("nopw") || l.starts_with("nopl");
    let mut records: Vec<(String, String)> = Vec::new(); // (function, label)
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix(".section\t__patchable_function_entries,") {
            let function = rest.rsplit(',').next().unwrap_or("").trim_matches('"').to_string();
            if let Some(label) = lines[i + 1..]
                .iter()
                .take(3)
                .find_map(|l| l.strip_prefix(".quad\t").or_else(|| l.strip_prefix(".xword\t")))
            {
                records.push((function, label.to_string()));
            }
        }
    }
    let mut functions = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix(".type\t").and_then(|r| r.strip_suffix(",@function")) else {
            continue;
        };
        let Some(label) = lines[i..].iter().position(|l| *l == format!("{name}:")).map(|p| p + i) else {
            continue;
        };
        let mut nops_before = 0;
        let mut prefix_label = None;
        for l in lines[i + 1..label].iter().rev() {
            if is_nop(l) {
                nops_before += 1;
            } else {
                if l.ends_with(':') {
                    prefix_label = Some(l.trim_end_matches(':').to_string());
                }
                break;
            }
        }
        let nops_after = lines[label + 1..]
            .iter()
            .filter(|l| !l.starts_with(".cfi_") && !l.starts_with(".Lfunc_begin") && !l.starts_with('#'))
            .take_while(|l| is_nop(l))
            .count();
        let record = records.iter().find(|(f, _)| f == name).map(|(_, l)| l.clone());
        functions.push(AsmFunction { name: name.to_string(), nops_before, nops_after, record, prefix_label });
    }
    functions
}

fn emit_asm(ctx: &Ctx, name: &str, flags: &[&str]) -> Result<String> {
    let dir = scratch(ctx, name)?;
    let out = dir.join("out.s");
    cmd::output(
        rustc(ctx)
            .args(["--crate-type=lib", "--edition=2021", "-O", "--emit=asm", "-o"])
            .arg(&out)
            .args(flags)
            .arg(source(ctx, "small.rs")),
    )?;
    fs::read_to_string(&out).context("reading the assembly")
}

fn asm_3_2(ctx: &Ctx) -> Result<()> {
    let asm = emit_asm(ctx, "asm-3-2", &["-Zpatchable-function-entry=3,2"])?;
    let functions = asm_functions(&asm);
    ensure!(functions.len() >= 5, "expected the crate's functions, found {functions:?}");
    let records = asm.matches(".section\t__patchable_function_entries,\"awo\",@progbits,").count();
    ensure!(records == functions.len(), "{records} records for {} functions", functions.len());
    for f in &functions {
        ensure!(f.nops_before == 2 && f.nops_after == 1, "{}: {} nops before, {} after", f.name, f.nops_before, f.nops_after);
        ensure!(
            f.record.is_some() && f.record == f.prefix_label,
            "{}: record {:?} does not point at the pad's start {:?}",
            f.name,
            f.record,
            f.prefix_label
        );
    }
    Ok(())
}

fn asm_unpadded(ctx: &Ctx) -> Result<()> {
    let asm = emit_asm(ctx, "asm-none", &[])?;
    let functions = asm_functions(&asm);
    ensure!(functions.len() >= 5, "expected the crate's functions, found {functions:?}");
    ensure!(!asm.contains("__patchable_function_entries"), "records without the flag");
    for f in &functions {
        ensure!(f.nops_before == 0 && f.nops_after == 0, "{}: padded without the flag", f.name);
    }
    Ok(())
}

fn cargo_build(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "cargo")?;
    fs::create_dir_all(dir.join("src"))?;
    fs::write(dir.join("Cargo.toml"), "[package]\nname = \"padded\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")?;
    fs::copy(source(ctx, "small.rs"), dir.join("src/lib.rs"))?;
    cmd::output(
        Command::new("cargo")
            .arg(format!("+{TOOLCHAIN}"))
            .args(["rustc", "--release", "--offline", "--", "--emit=asm"])
            .env("RUSTFLAGS", "-Zpatchable-function-entry=16,16")
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .current_dir(&dir),
    )?;
    let deps = dir.join("target/release/deps");
    let asm = fs::read_dir(&deps)?
        .flatten()
        .find(|e| e.path().extension().map_or(false, |x| x == "s"))
        .map(|e| e.path())
        .with_context(|| format!("no .s file in {}", deps.display()))?;
    let functions = asm_functions(&fs::read_to_string(asm)?);
    ensure!(!functions.is_empty(), "no functions in the crate's assembly");
    for f in &functions {
        if f.nops_before != 16 || f.nops_after != 0 {
            bail!("{}: {} nops before, {} after (want 16, 0)", f.name, f.nops_before, f.nops_after);
        }
    }
    Ok(())
}
