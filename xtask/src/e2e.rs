//! End-to-end tests: the built toolchain on real inputs, checked at the
//! assembly, object and run-time level. Sources live in `tests/e2e/`. They
//! run as libtest tests (`e2e::tests::NAME`, registered below); `./x bench`
//! shares the helpers that build `library/core`.
#![cfg_attr(not(test), allow(dead_code))]

use crate::cmd;
#[cfg(test)]
use crate::e2e_matrix::{
    cargo_test_and_doc, core_kernel_aarch64, core_kernel_riscv64, core_kernel_x86_64, core_kernel_x86_64_os,
    differential_nonleaf_aarch64, differential_nonleaf_i686, differential_nonleaf_riscv64,
    differential_nonleaf_x86_64, every_target, made_up_functions, mcount_once,
};
use crate::paths::{scratch, Ctx, TOOLCHAIN};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Registers end-to-end tests as libtest tests, one line each:
/// `body_fn: "what it proves",` becomes `#[test] e2e::tests::body_fn`,
/// `#[ignore]`d (it needs the built toolchain: `./x test` runs it with
/// `--include-ignored`; by hand, `cargo test -- --ignored NAME`).
macro_rules! e2e_tests {
    ($($name:ident: $what:literal,)*) => {
        #[cfg(test)]
        mod tests {
            $(
                #[doc = $what]
                #[test]
                #[ignore = "needs the built toolchain: ./x test runs it"]
                fn $name() -> Result<(), crate::test::Failure> {
                    let ctx = crate::paths::Ctx::new().map_err(crate::test::Failure)?;
                    super::$name(&ctx).map_err(crate::test::Failure)
                }
            )*
        }
    };
}

e2e_tests! {
    toolchain_version: "rustc +pfe -vV is 1.63.0 with LLVM 14",
    asm_3_2: "-Zpatchable-function-entry=3,2 --emit=asm pads every function",
    asm_unpadded: "without the flag no function is padded",
    cargo_build: "cargo +pfe build with RUSTFLAGS pads the crate",
    differential_x86_64: "x86_64 pads and records equal clang-14's byte for byte",
    differential_aarch64: "aarch64 pads and records equal clang-14's byte for byte",
    live_patch_x86_64: "x86_64 live patch through the records (=5)",
    live_patch_aarch64: "aarch64 live patch through the records under qemu (=2)",
    gc_sections: "--gc-sections drops dropped functions' records (GNU ld, lld)",
    cross_crate: "across crates the crate that generates the code decides",
    core_x86_64_16_16: "library/core x86_64 =16,16: every function padded",
    core_aarch64_2: "library/core aarch64 =2: every function padded",
    core_aarch64_4_2: "library/core aarch64 =4,2: every function padded",
    bad_inputs: "bad flag values, attribute arguments, targets: errors, no ICE",
    differential_nonleaf_aarch64: "aarch64 non-leaf with bti/pac-ret equals clang-14 from pad to paciasp",
    differential_nonleaf_x86_64: "x86_64 non-leaf with and without endbr64 equals clang-14",
    differential_nonleaf_i686: "i686 non-leaf with and without endbr32 equals clang-14",
    differential_nonleaf_riscv64: "riscv64 non-leaf with and without the C extension equals clang-14",
    mcount_once: "-Z instrument-mcount calls mcount once per function at any opt/LTO setting",
    every_target: "every target and JSON spec: padded with records or refused, mcount never crashes",
    cargo_test_and_doc: "cargo +pfe test runs doc examples, cargo +pfe doc works",
    core_kernel_x86_64: "library/core x86_64 =16,16 aligned 16 (-O): padded, recorded, every site aligned",
    core_kernel_x86_64_os: "library/core x86_64 =16,16 aligned 16 (opt-level=s): padded, recorded, aligned",
    core_kernel_aarch64: "library/core aarch64 =4,2 aligned 8: padded, recorded, every site aligned",
    core_kernel_riscv64: "library/core riscv64 =4 aligned 4: padded, recorded, every site aligned",
    made_up_functions: "the C main and the allocator shim are padded and aligned too",
    kernel_series_applies: "kernel/patches applies to linux-source-6.1 without fuzz",
    metadata_refusal: "this rustc and Debian's refuse each other's rlibs by the metadata version",
    records_name_this_series: "every recorded result names the series head patches/ builds",
    series_code_is_rustfmt_clean: "rustfmt with upstream's settings changes no compiler line the series adds",
}

fn kernel_series_applies(ctx: &Ctx) -> Result<()> {
    crate::kernel::series_applies(ctx)
}

pub(crate) fn source(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.root.join("tests/e2e").join(name)
}

/// The toolchain's rustc, called directly (not through rustup) unless a test
/// is about rustup. `PFE_E2E_RUSTC` replaces it, to show that the tests fail
/// with a compiler that pads wrongly or not at all.
pub fn rustc(ctx: &Ctx) -> Command {
    match std::env::var_os("PFE_E2E_RUSTC") {
        Some(other) => Command::new(other),
        None => Command::new(ctx.toolchain().join("bin/rustc")),
    }
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

/// rustc for `target`, linking aarch64 programs with the cross gcc.
pub(crate) fn rustc_for(ctx: &Ctx, target: &str) -> Command {
    let mut cmd = rustc(ctx);
    cmd.args(["--target", target]);
    if target.starts_with("aarch64") {
        cmd.args(["-C", "linker=aarch64-linux-gnu-gcc"]);
    }
    cmd
}

pub fn reports(path: &std::path::Path) -> Result<Vec<pfe_check::Report>> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    pfe_check::analyze(&path.to_string_lossy(), &data)
}

pub(crate) fn function<'a>(reports: &'a [pfe_check::Report], name: &str) -> Option<&'a pfe_check::Function> {
    reports.iter().flat_map(|r| &r.functions).find(|f| f.name == name)
}

/// What pfe-check reads of `f` in the object `path`: its pad, landing pad,
/// records and where they point, and the record sections' flags; the
/// differential tests compare it between compilers.
pub(crate) fn shape_of(path: &std::path::Path) -> Result<String> {
    let reports = reports(path)?;
    let f = function(&reports, "f").with_context(|| format!("no `f` in {}", path.display()))?;
    let flags: Vec<&str> = reports[0].record_sections.iter().map(|s| s.flags.as_str()).collect();
    Ok(format!(
        "pad {} landing {} records {} at {:?} section flags {:?}",
        f.pad,
        f.landing_pad.unwrap_or("-"),
        f.records,
        f.record_offset,
        flags
    ))
}

/// The shapes the kernel and GCC/Clang users pass: `N` or `N,M`.
const SHAPES: &[(u64, u64)] = &[(1, 0), (2, 0), (3, 2), (4, 2), (5, 0), (8, 4), (16, 16)];

/// Compiles `entry.rs` with rustc and `entry.c` with clang-14 and gcc for every
/// shape, with and without a landing pad, and compares `f`'s pad, landing
/// pad and record. rustc must equal clang (same LLVM) byte for byte; GCC's
/// differences are printed, not failed.
fn differential(ctx: &Ctx, target: &str, clang_target: &str, gcc: &str, landing: (&str, &str)) -> Result<()> {
    let dir = scratch(ctx, &format!("differential-{target}"))?;
    let mut mismatches = Vec::new();
    let mut gcc_differences = Vec::new();
    let mut compared = 0;
    for &(n, m) in SHAPES {
        for with_pad in [false, true] {
            let shape = if m > 0 { format!("{n},{m}") } else { format!("{n}") };
            let tag = format!("{shape}{}", if with_pad { "+lp" } else { "" });
            let r_obj = dir.join(format!("rust-{tag}.o"));
            let mut rc = rustc_for(ctx, target);
            rc.args(["--crate-type=lib", "-O", "--emit=obj", "-o"]).arg(&r_obj);
            rc.arg(format!("-Zpatchable-function-entry={shape}"));
            if with_pad {
                rc.arg(landing.0);
            }
            cmd::output(rc.arg(source(ctx, "entry.rs")))?;
            let c_obj = dir.join(format!("clang-{tag}.o"));
            let mut cc = Command::new("clang-14");
            cc.arg(format!("--target={clang_target}")).args(["-O2", "-c", "-o"]).arg(&c_obj);
            cc.arg(format!("-fpatchable-function-entry={n},{m}"));
            if with_pad {
                cc.arg(landing.1);
            }
            cmd::output(cc.arg(source(ctx, "entry.c")))?;
            let g_obj = dir.join(format!("gcc-{tag}.o"));
            let mut gc = Command::new(gcc);
            gc.args(["-O2", "-c", "-o"]).arg(&g_obj).arg(format!("-fpatchable-function-entry={n},{m}"));
            if with_pad {
                gc.arg(landing.1);
            }
            cmd::output(gc.arg(source(ctx, "entry.c")))?;
            let (rust, clang, gnu) = (shape_of(&r_obj)?, shape_of(&c_obj)?, shape_of(&g_obj)?);
            compared += 1;
            if rust != clang {
                mismatches.push(format!("{tag}:\n  rustc {rust}\n  clang {clang}"));
            }
            if rust != gnu {
                gcc_differences.push(format!("{tag}: rustc {rust} / gcc {gnu}"));
            }
        }
    }
    println!("            {compared} configurations compared with clang-14; {} differ from gcc:", gcc_differences.len());
    for d in &gcc_differences {
        println!("              {d}");
    }
    ensure!(mismatches.is_empty(), "rustc differs from clang-14:\n{}", mismatches.join("\n"));
    Ok(())
}

fn differential_x86_64(ctx: &Ctx) -> Result<()> {
    differential(ctx, "x86_64-unknown-linux-gnu", "x86_64-linux-gnu", "gcc", ("-Zcf-protection=branch", "-fcf-protection=branch"))
}

fn differential_aarch64(ctx: &Ctx) -> Result<()> {
    differential(
        ctx,
        "aarch64-unknown-linux-gnu",
        "aarch64-linux-gnu",
        "aarch64-linux-gnu-gcc",
        ("-Zbranch-protection=bti", "-mbranch-protection=bti"),
    )
}

/// Builds `live_patch.rs` with and without padding and runs it (natively or
/// under qemu-aarch64): with padding every record points at the nops and the
/// patched call lands in the replacement; without it there are no records.
fn live_patch(ctx: &Ctx, target: &str, shape: &str, runner: &[&str]) -> Result<()> {
    let dir = scratch(ctx, &format!("live-{target}"))?;
    let run = |flags: &[&str], name: &str| -> Result<String> {
        let exe = dir.join(name);
        cmd::output(rustc_for(ctx, target).args(["-O", "-o"]).arg(&exe).args(flags).arg(source(ctx, "live_patch.rs")))?;
        let mut cmd = match runner.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        Ok(cmd::output(&mut cmd)?.trim().to_string())
    };
    let padded = run(&[&format!("-Zpatchable-function-entry={shape}")], "padded")?;
    let fields: std::collections::BTreeMap<&str, &str> = padded.split_whitespace().filter_map(|kv| kv.split_once('=')).collect();
    let records: usize = fields.get("records").and_then(|v| v.parse().ok()).context("no records= in the output")?;
    ensure!(records >= 3, "padded program found {records} records: {padded}");
    ensure!(fields.get("nops") == Some(&fields["records"]), "not every record points at nops: {padded}");
    ensure!(fields.get("before") == Some(&"1") && fields.get("after") == Some(&"2"), "the patch did not take: {padded}");
    let unpadded = run(&[], "unpadded")?;
    ensure!(unpadded == "records=0 nops=0 before=1 after=1", "without the flag: {unpadded}");
    println!("            padded: {padded}; unpadded: {unpadded}");
    Ok(())
}

fn live_patch_x86_64(ctx: &Ctx) -> Result<()> {
    live_patch(ctx, "x86_64-unknown-linux-gnu", "5", &[])
}

fn live_patch_aarch64(ctx: &Ctx) -> Result<()> {
    live_patch(ctx, "aarch64-unknown-linux-gnu", "2", &["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"])
}

fn gc_sections(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "gc-sections")?;
    let obj = dir.join("gc_lib.o");
    cmd::output(
        rustc(ctx)
            .args(["--crate-type=lib", "-O", "--emit=obj", "-Zpatchable-function-entry=5", "-o"])
            .arg(&obj)
            .arg(source(ctx, "gc_lib.rs")),
    )?;
    let object = reports(&obj)?;
    for name in ["keep_a", "drop_b"] {
        let f = function(&object, name).with_context(|| format!("{name} missing from the object"))?;
        ensure!(f.records == 1, "{name} has {} records in the object", f.records);
    }
    let links: [(&str, &str, &[&str]); 4] = [
        ("GNU ld --gc-sections", "gcc", &["-Wl,--gc-sections"]),
        ("lld --gc-sections", "clang-14", &["-fuse-ld=lld", "-Wl,--gc-sections"]),
        ("GNU ld", "gcc", &[]),
        ("lld", "clang-14", &["-fuse-ld=lld"]),
    ];
    for (what, driver, flags) in links {
        let exe = dir.join(what.replace(' ', "_"));
        cmd::output(Command::new(driver).args(flags).arg("-o").arg(&exe).arg(source(ctx, "gc_main.c")).arg(&obj))?;
        cmd::output(&mut Command::new(&exe)).with_context(|| format!("running the {what} executable"))?;
        let linked = reports(&exe)?;
        let r = &linked[0];
        ensure!(r.orphans.is_empty(), "{what}: dangling records: {:?}", r.orphans);
        let keep = function(&linked, "keep_a").with_context(|| format!("{what}: keep_a missing"))?;
        ensure!(keep.records == 1 && keep.entry_nops == 5, "{what}: keep_a has {} records, {} nops", keep.records, keep.entry_nops);
        let total: usize = r.record_sections.iter().map(|s| s.records).sum();
        let gc = what.contains("gc-sections");
        let dropped = function(&linked, "drop_b");
        if gc {
            ensure!(dropped.is_none(), "{what}: drop_b was kept");
            ensure!(total == 1, "{what}: {total} records, want only keep_a's");
        } else {
            ensure!(dropped.map(|f| f.records) == Some(1), "{what}: drop_b should be kept with its record");
            ensure!(total == 2, "{what}: {total} records, want 2");
        }
    }
    Ok(())
}

/// What pfe-check says of the function whose (mangled) name contains `part`.
fn padding_of(reports: &[pfe_check::Report], part: &str) -> Result<(u64, u64, usize)> {
    let f = reports
        .iter()
        .flat_map(|r| &r.functions)
        .find(|f| f.name.contains(part))
        .with_context(|| format!("no function named like {part}"))?;
    Ok((f.prefix_nops, f.entry_nops, f.records))
}

fn cross_crate(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "cross-crate")?;
    // (flag of the upstream crate, flag of the downstream crate)
    for (dep_flag, user_flag) in [(None, Some("3,1")), (Some("3,1"), None)] {
        let sub = dir.join(format!("dep-{}-user-{}", dep_flag.unwrap_or("none"), user_flag.unwrap_or("none")));
        fs::create_dir_all(&sub)?;
        let mut dep = rustc(ctx);
        dep.args(["-O", "-C", "codegen-units=1", "--out-dir"]).arg(&sub);
        if let Some(f) = dep_flag {
            dep.arg(format!("-Zpatchable-function-entry={f}"));
        }
        cmd::output(dep.arg(source(ctx, "cross_dep.rs")))?;
        let user_obj = sub.join("user.o");
        let mut user = rustc(ctx);
        user.args(["-O", "-C", "codegen-units=1", "--emit=obj", "--extern"])
            .arg(format!("cross_dep={}", sub.join("libcross_dep.rlib").display()))
            .arg("-o")
            .arg(&user_obj);
        if let Some(f) = user_flag {
            user.arg(format!("-Zpatchable-function-entry={f}"));
        }
        cmd::output(user.arg(source(ctx, "cross_user.rs")))?;
        let dep_reports = reports(&sub.join("libcross_dep.rlib"))?;
        let user_reports = reports(&user_obj)?;
        let padded = |flag: Option<&str>| if flag.is_some() { (1, 2, 1) } else { (0, 0, 0) };
        let want = [
            (&user_reports, "4user", padded(user_flag)),
            // Instantiated, or code-generated for an #[inline] function, downstream:
            // the downstream crate's flag.
            (&user_reports, "11dep_generic", padded(user_flag)),
            (&user_reports, "10dep_inline", padded(user_flag)),
            // The attribute travels with the function.
            (&user_reports, "16dep_attr_generic", (1, 1, 1)),
            // Code generated upstream: the upstream crate's flag.
            (&dep_reports, "9dep_plain", padded(dep_flag)),
        ];
        for (reports, part, expected) in want {
            let got = padding_of(reports, part)?;
            // Without a record the nops before the symbol are alignment padding.
            let got = if got.2 == 0 { (0, got.1, 0) } else { got };
            ensure!(
                got == expected,
                "dep {dep_flag:?}, user {user_flag:?}: {part}: (prefix, entry, records) = {got:?}, want {expected:?}"
            );
        }
    }
    Ok(())
}

/// `library/core` of the pinned tree compiled with `flags` into an rlib; the
/// result is kept (keyed by the compiler's identity and the flags) so a
/// warm `./x test` and `./x bench` do not compile it again.
pub fn core_rlib(ctx: &Ctx, target: &str, shape: Option<&str>) -> Result<PathBuf> {
    core_rlib_with(ctx, target, shape, &[])
}

/// [`core_rlib`] with `extra` rustc flags (alignment, opt-level), which are
/// part of its name in the cache.
pub fn core_rlib_with(ctx: &Ctx, target: &str, shape: Option<&str>, extra: &[&str]) -> Result<PathBuf> {
    let dir = ctx.cache.join("core-builds");
    fs::create_dir_all(&dir)?;
    let mut name = format!("core-{target}-{}", shape.unwrap_or("none").replace(',', "_"));
    for flag in extra {
        name.push('-');
        name.extend(flag.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    }
    let out = dir.join(format!("{name}.rlib"));
    let stamp = dir.join(format!("{name}.stamp"));
    let key = compiler_identity(ctx)?;
    if out.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str()) {
        return Ok(out);
    }
    cmd::output(core_command(ctx, target, shape, &out).args(extra))?;
    fs::write(&stamp, key)?;
    Ok(out)
}

/// The rustc command that compiles the pinned tree's `library/core` into the
/// rlib `out`, padded as `shape` asks (the tests and `./x bench` share it).
pub fn core_command(ctx: &Ctx, target: &str, shape: Option<&str>, out: &std::path::Path) -> Command {
    let mut cmd = rustc_for(ctx, target);
    cmd.args(["--crate-type=rlib", "--crate-name=core", "--edition=2021", "-O", "-o"]).arg(out);
    if let Some(s) = shape {
        cmd.arg(format!("-Zpatchable-function-entry={s}"));
    }
    cmd.arg(ctx.src().join("library/core/src/lib.rs"));
    cmd
}

/// Size and modification time of the toolchain's compiler files: changes
/// when it is rebuilt.
fn compiler_identity(ctx: &Ctx) -> Result<String> {
    let mut key = format!("PFE_E2E_RUSTC={:?}\n", std::env::var_os("PFE_E2E_RUSTC"));
    let mut paths = vec![ctx.toolchain().join("bin/rustc")];
    for entry in fs::read_dir(ctx.toolchain().join("lib"))? {
        let path = entry?.path();
        if path.file_name().map_or(false, |n| n.to_string_lossy().starts_with("librustc_driver")) {
            paths.push(path);
        }
    }
    for path in paths {
        let meta = fs::metadata(&path)?;
        let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        key.push_str(&format!("{} {} {mtime}\n", path.display(), meta.len()));
    }
    Ok(key)
}

fn core_padded(ctx: &Ctx, target: &str, shape: &str) -> Result<()> {
    let rlib = core_rlib(ctx, target, Some(shape))?;
    let reports = reports(&rlib)?;
    let expect: pfe_check::Expect = shape.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut functions = 0;
    let mut offenders = Vec::new();
    for r in &reports {
        functions += r.functions.len();
        ensure!(r.orphans.is_empty() && r.problems.is_empty(), "{}: {:?} {:?}", r.path, r.orphans, r.problems);
        offenders.extend(r.offenders(expect, &[]).into_iter().map(|(name, why)| format!("{name}: {}", why.join("; "))));
    }
    ensure!(functions > 500, "only {functions} functions in core?");
    ensure!(offenders.is_empty(), "{} of {functions} functions not padded as {shape}:\n{}", offenders.len(), offenders.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    println!("            {functions} functions in {} objects, 100% padded and recorded as {shape} (no naked functions in core)", reports.len());
    Ok(())
}

fn core_x86_64_16_16(ctx: &Ctx) -> Result<()> {
    core_padded(ctx, "x86_64-unknown-linux-gnu", "16,16")
}

fn core_aarch64_2(ctx: &Ctx) -> Result<()> {
    core_padded(ctx, "aarch64-unknown-linux-gnu", "2")
}

fn core_aarch64_4_2(ctx: &Ctx) -> Result<()> {
    core_padded(ctx, "aarch64-unknown-linux-gnu", "4,2")
}

/// How one compilation ended.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Outcome {
    /// Compiled.
    Ok,
    /// Refused with an error (exit status 1).
    Error,
    /// An ICE, an LLVM error or crash, a signal: never acceptable.
    Crash,
}

pub(crate) fn outcome(cmd: &mut Command) -> Result<(Outcome, String)> {
    let out = cmd.output().with_context(|| format!("cannot start `{}`", cmd::show(cmd)))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let crashed = stderr.contains("internal compiler error")
        || stderr.contains("LLVM ERROR")
        || stderr.contains("error: could not compile")
        || out.status.code().map_or(true, |c| c != 0 && c != 1);
    let o = if crashed {
        Outcome::Crash
    } else if out.status.success() {
        Outcome::Ok
    } else {
        Outcome::Error
    };
    Ok((o, stderr))
}

/// Every page that records measured results names the series they were
/// measured on, the HEAD `./x build` makes from `patches/` (commit ids are
/// deterministic); a page that names another one was not rerun after the
/// series changed. A page with a placeholder (`@@...@@`) left in it was not
/// finished.
fn records_name_this_series(ctx: &Ctx) -> Result<()> {
    let head = crate::apply::head(&ctx.src())?;
    let short = &head[..12];
    let mut stale = Vec::new();
    let mut unfinished = Vec::new();
    for page in ["docs/REGRESSIONS.md", "docs/PERFORMANCE.md", "docs/KERNEL.md", "patches/COVER.md", "README.md"] {
        let text = fs::read_to_string(ctx.root.join(page))?;
        if !text.contains(&format!("`{short}`")) {
            stale.push(page);
        }
        if text.contains("@@") {
            unfinished.push(page);
        }
    }
    ensure!(stale.is_empty(), "these pages do not name the series `{short}` they must have been measured on: {stale:?}");
    ensure!(unfinished.is_empty(), "these pages still hold a `@@...@@` placeholder: {unfinished:?}");
    Ok(())
}

/// The compiler code the series adds is formatted as upstream formats its
/// own: rustfmt with the settings of upstream's `rustfmt.toml` for 1.63
/// (`version = "Two"`, which newer rustfmt calls style edition 2024;
/// `use_small_heuristics = "Max"`; `merge_derives = false`) rewrites no line
/// of a file the series changes that it leaves alone in the base. The pinned
/// rustfmt of 1.63 is not packaged, so this uses the one in PATH, and what
/// it does differently from the pinned one is taken out by comparing with
/// the base: a line it rewrites the same way in both is its own habit, not
/// the series'. It sorts imports otherwise (imports are not reordered) and
/// parses let chains only as edition 2024, where `gen` is a keyword (it is
/// escaped first).
fn series_code_is_rustfmt_clean(ctx: &Ctx) -> Result<()> {
    let src = ctx.src();
    let dir = scratch(ctx, "rustfmt")?;
    let git = |args: &[&str]| cmd::output(crate::prepare::git(&src).args(args));
    let files = git(&["diff", "--name-status", "--diff-filter=AM", "base", "HEAD", "--", "compiler/*.rs"])?;
    ensure!(!files.trim().is_empty(), "the series changes no compiler source: is the cached tree prepared?");
    let mut rewritten = Vec::new();
    for line in files.lines() {
        let (status, file) = line.split_once('\t').with_context(|| format!("`git diff --name-status` printed `{line}`"))?;
        let base = match status {
            "A" => Vec::new(), // a file the series adds
            _ => rustfmt_rewrites(&dir, &git(&["show", &format!("base:{file}")])?)?,
        };
        for line in rustfmt_rewrites(&dir, &git(&["show", &format!("HEAD:{file}")])?)? {
            if !base.contains(&line) {
                rewritten.push(format!("{file}: {line}"));
            }
        }
    }
    ensure!(
        rewritten.is_empty(),
        "rustfmt (upstream's settings) rewrites lines the series adds (- as written, + as rustfmt writes them):\n{}",
        rewritten.join("\n")
    );
    Ok(())
}

/// The lines rustfmt would remove from `code` (`-`) and write instead (`+`).
fn rustfmt_rewrites(dir: &std::path::Path, code: &str) -> Result<Vec<String>> {
    let path = dir.join("file.rs");
    let code = escape_gen(code);
    fs::write(&path, &code)?;
    let config = "style_edition=2024,use_small_heuristics=Max,merge_derives=false,reorder_imports=false,\
                  skip_children=true";
    cmd::output(Command::new("rustfmt").args(["--edition", "2024", "--config", config]).arg(&path))
        .context("rustfmt from PATH (`rustup component add rustfmt`)")?;
    let formatted = fs::read_to_string(&path)?;
    let (before, after): (BTreeSet<&str>, BTreeSet<&str>) = (code.lines().collect(), formatted.lines().collect());
    let mut lines: Vec<String> = before.difference(&after).map(|l| format!("- {l}")).collect();
    lines.extend(after.difference(&before).map(|l| format!("+ {l}")));
    Ok(lines)
}

/// `code` with every identifier `gen` written `r#gen`, as edition 2024 needs.
fn escape_gen(code: &str) -> String {
    let ident = |c: Option<char>| c.map_or(false, |c| c.is_alphanumeric() || c == '_' || c == '#');
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("gen") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        if !ident(head.chars().next_back()) && !ident(tail[3..].chars().next()) {
            out.push_str("r#");
        }
        out.push_str("gen");
        rest = &tail[3..];
    }
    out.push_str(rest);
    out
}

/// The metadata version an rlib's `lib.rmeta` carries: the byte after
/// rustc's `rust\0\0\0` header.
fn metadata_version(rlib: &std::path::Path) -> Result<u8> {
    let data = fs::read(rlib)?;
    let at = data
        .windows(8)
        .position(|w| &w[..7] == b"rust\0\0\0")
        .with_context(|| format!("{}: no crate metadata header", rlib.display()))?;
    Ok(data[at + 7])
}

/// The series changes what crate metadata holds and gives it a metadata
/// version of its own, so that this rustc and Debian's unpatched rustc 1.63
/// refuse each other's rlibs with rustc's own error, by that version, not by
/// the version line (a stable-channel build from the series prints the same
/// `rustc 1.63.0` as Debian's). Each reads its own rlibs. The version is the
/// base's with the high bit set, private to the series: upstream's are all
/// below 16, and a number upstream used would make tools that switch on it
/// read these files with upstream's layout.
fn metadata_refusal(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "metadata-refusal")?;
    let dep = dir.join("dep.rs");
    let user = dir.join("user.rs");
    fs::write(&dep, "pub fn answer() -> u32 {\n    42\n}\n")?;
    fs::write(&user, "pub fn f() -> u32 {\n    dep::answer()\n}\n")?;
    // This rustc through `rustc`, so that `PFE_E2E_RUSTC` replaces it here too.
    let pfe = || rustc(ctx);
    let debian = || Command::new("/usr/bin/rustc");
    let compilers: [(&str, &dyn Fn() -> Command); 2] = [("pfe", &pfe), ("debian", &debian)];
    let mut versions = Vec::new();
    for (name, compiler) in &compilers {
        let out = dir.join(name);
        fs::create_dir_all(&out)?;
        cmd::output(compiler().args(["--crate-type=rlib", "--crate-name=dep", "--out-dir"]).arg(&out).arg(&dep))?;
        versions.push(metadata_version(&out.join("libdep.rlib"))?);
    }
    ensure!(
        versions[0] == versions[1] | 0x80 && versions[0] >= 16,
        "metadata versions: this rustc {}, Debian's {}; want Debian's with the high bit set",
        versions[0],
        versions[1]
    );
    for (reader, reader_rustc) in &compilers {
        for (writer, _) in &compilers {
            let rlib = dir.join(writer).join("libdep.rlib");
            let mut c = reader_rustc();
            c.args(["--crate-type=rlib", "--edition=2021", "--out-dir"]).arg(dir.join(format!("{reader}-reads-{writer}")));
            c.arg("--extern").arg(format!("dep={}", rlib.display())).arg(&user);
            let (how, stderr) = outcome(&mut c)?;
            match (reader == writer, how) {
                (true, Outcome::Ok) => {}
                (false, Outcome::Error) => ensure!(
                    stderr.contains("error[E0786]: found invalid metadata files for crate `dep`")
                        && stderr.contains("invalid metadata version found"),
                    "{reader} reading {writer}'s rlib failed otherwise:\n{stderr}"
                ),
                (_, how) => bail!("{reader} reading {writer}'s rlib: {how:?}\n{stderr}"),
            }
        }
    }
    println!("            metadata version {:#x} here, {} in Debian's rustc; refused both ways", versions[0], versions[1]);
    Ok(())
}

pub(crate) const NO_CORE: &str = "#![feature(no_core, lang_items)]\n#![no_core]\n#![crate_type = \"lib\"]\n#[lang = \"sized\"]\ntrait Sized {}\n";

/// Every bad input the project knows of, each compiled on its own: flag
/// values, attribute arguments and placements, and targets through LLVM
/// (`--emit=obj`). Each must end as expected, and none in a crash.
fn bad_inputs(ctx: &Ctx) -> Result<()> {
    use Outcome::{Error, Ok as Fine};
    let dir = scratch(ctx, "bad-inputs")?;
    let mut tried = 0;
    let mut wrong = Vec::new();
    let mut check = |what: String, expected: Outcome, cmd: &mut Command| -> Result<()> {
        tried += 1;
        let (got, stderr) = outcome(cmd)?;
        if got != expected {
            wrong.push(format!("{what}: {got:?}, want {expected:?}\n{}", cmd::tail(&stderr, 6)));
        }
        Ok(())
    };
    let lib = dir.join("lib.rs");
    fs::write(&lib, "#![crate_type = \"lib\"]\npub fn f() {}\n")?;
    let flags: &[(&str, Outcome)] = &[
        ("", Error), ("3,", Error), (",", Error), (",3", Error), ("a", Error), ("-1", Error),
        ("256", Error), ("1,2", Error), ("3,2,x", Error), ("3,2,", Error), (" 3", Error),
        ("3 ", Error), ("0x10", Error), ("1e3", Error),
        ("3,,", Error), ("18446744073709551616", Error), ("255,256", Error), ("\u{663}", Error),
        ("3;2", Error), ("3.0", Error), ("1,1,1,1", Error), ("-0", Error), ("3,-1", Error),
        ("0", Fine), ("0,0", Fine), ("255", Fine), ("255,255", Fine), ("016,016", Fine), ("7,7", Fine),
        // Each number is read by Rust's `u8::from_str`, as newer rustc reads its own
        // spelling of the flag, and that takes one leading `+` (GCC and Clang do not).
        ("+3", Fine), ("3,+1", Fine),
    ];
    for (value, expected) in flags {
        check(
            format!("-Zpatchable-function-entry={value:?}"),
            *expected,
            rustc(ctx).arg(format!("-Zpatchable-function-entry={value}")).args(["--emit=obj", "--out-dir"]).arg(&dir).arg(&lib),
        )?;
    }
    check("-Zpatchable-function-entry without a value".into(), Error, rustc(ctx).arg("-Zpatchable-function-entry").arg(&lib))?;

    let attrs: &[(&str, &str, Outcome)] = &[
        ("prefix_nops = -1", "pub fn f() {}", Error),
        ("prefix_nops = 'a'", "pub fn f() {}", Error),
        ("prefix_nops = true", "pub fn f() {}", Error),
        ("prefix_nops = 256u64", "pub fn f() {}", Error),
        ("prefix_nops(3)", "pub fn f() {}", Error),
        ("a::b = 1", "pub fn f() {}", Error),
        ("entry_nops = x", "pub fn f() {}", Error),
        ("prefix_nops = 1, entry_nops = 1, prefix_nops = 2", "pub fn f() {}", Error),
        ("entry_nops = 1", "static S: u8 = 0;", Error),
        ("entry_nops = 1", "mod m {}", Error),
        ("entry_nops = 1", "struct S; impl S {}", Error),
        ("entry_nops = 1", "trait T {}", Error),
        ("entry_nops = 1", "enum E { A }", Error),
        ("entry_nops = 1", "type A = u8;", Error),
        ("entry_nops = 1", "macro_rules! m { () => {} }", Error),
        ("entry_nops = 1", "extern \"C\" { fn g(); }", Error),
        ("prefix_nops = 3u8", "pub fn f() {}", Error),
        ("entry_nops = 0x10", "pub fn f() {}", Fine),
        ("entry_nops = 1_0", "pub fn f() {}", Fine),
        ("prefix_nops = 255, entry_nops = 255", "pub fn f() {}", Fine),
        ("entry_nops = 2", "pub const fn f() {}", Fine),
        ("entry_nops = 2", "pub async fn f() {}", Fine),
        ("entry_nops = 2", "pub fn f() {}\npub trait T { #[patchable_function_entry(prefix_nops = 1)] fn d(&self) {} }", Fine),
        ("entry_nops = 2", "pub fn f<T>(t: T) -> T { t }", Fine),
    ];
    for (i, (args, item, expected)) in attrs.iter().enumerate() {
        let file = dir.join(format!("attr{i}.rs"));
        fs::write(
            &file,
            format!("#![crate_type = \"lib\"]\n#![feature(patchable_function_entry)]\n#[patchable_function_entry({args})]\n{item}\n"),
        )?;
        check(
            format!("#[patchable_function_entry({args})] on `{item}`"),
            *expected,
            rustc(ctx).args(["--edition=2021", "--emit=obj", "--out-dir"]).arg(&dir).arg(&file),
        )?;
    }
    // On a closure, without and with the feature that allows attributes there.
    let closure = dir.join("closure.rs");
    fs::write(&closure, "#![crate_type = \"lib\"]\n#![feature(patchable_function_entry)]\npub fn f() -> u32 { let c = #[patchable_function_entry(entry_nops = 1)] || 1; c() }\n")?;
    check("attribute on a closure without stmt_expr_attributes".into(), Error, rustc(ctx).args(["--emit=obj", "--out-dir"]).arg(&dir).arg(&closure))?;

    // Every target through LLVM's code generator (`--emit=asm`: nvptx emits no
    // objects): padded where supported, refused elsewhere,
    // `=0` accepted everywhere.
    let targets: &[(&str, bool)] = &[
        ("x86_64-unknown-linux-gnu", true), ("x86_64-unknown-none", true), ("i686-unknown-linux-gnu", true),
        ("aarch64-unknown-linux-gnu", true), ("aarch64-unknown-none", true), ("riscv64gc-unknown-linux-gnu", true),
        ("riscv32imac-unknown-none-elf", true), ("armv7-unknown-linux-gnueabihf", false), ("thumbv7em-none-eabi", false),
        ("powerpc64le-unknown-linux-gnu", false), ("s390x-unknown-linux-gnu", false), ("sparc64-unknown-linux-gnu", false),
        ("mips-unknown-linux-gnu", false), ("wasm32-unknown-unknown", false), ("nvptx64-nvidia-cuda", false),
        ("x86_64-apple-darwin", false), ("aarch64-apple-darwin", false), ("x86_64-pc-windows-msvc", false),
    ];
    let flag_src = dir.join("target_flag.rs");
    fs::write(&flag_src, format!("{NO_CORE}#[no_mangle]\npub fn f() {{}}\n"))?;
    let attr_src = dir.join("target_attr.rs");
    fs::write(&attr_src, format!("#![feature(patchable_function_entry)]\n{NO_CORE}#[no_mangle]\n#[patchable_function_entry(prefix_nops = 1, entry_nops = 1)]\npub fn f() {{}}\n"))?;
    for (target, supported) in targets {
        let expected = if *supported { Fine } else { Error };
        let obj = |name: &str| dir.join(format!("{target}-{name}.s"));
        check(format!("{target} -Zpatchable-function-entry=2,1"), expected,
            rustc(ctx).args(["--target", target, "-O", "--emit=asm", "-Zpatchable-function-entry=2,1", "-o"]).arg(obj("flag")).arg(&flag_src))?;
        check(format!("{target} #[patchable_function_entry(1, 1)]"), expected,
            rustc(ctx).args(["--target", target, "-O", "--emit=asm", "-o"]).arg(obj("attr")).arg(&attr_src))?;
        check(format!("{target} -Zpatchable-function-entry=0"), Fine,
            rustc(ctx).args(["--target", target, "-O", "--emit=asm", "-Zpatchable-function-entry=0", "-o"]).arg(obj("zero")).arg(&flag_src))?;
    }
    println!("            {tried} inputs tried: {} ended otherwise than expected; none may crash", wrong.len());
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}
