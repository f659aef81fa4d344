//! End-to-end tests of the wider matrix: non-leaf functions with return-address
//! signing against clang-14, `-Z instrument-mcount` counted after all inlining
//! and LTO, every target rustc knows (custom JSON specs included) through
//! LLVM's code generator, and the toolchain's rustdoc through cargo.

#![cfg_attr(not(test), allow(dead_code))]

use crate::cmd;
use crate::e2e::{self, function, outcome, reports, rustc, rustc_for, shape_of, source, Outcome, NO_CORE};
use crate::paths::{scratch, Ctx};
use anyhow::{ensure, Context, Result};
use std::fs;
use std::path::Path;
use std::process::Command;

/// The entry of the code of `obj` as `llvm-objdump-14` shows it, one
/// `bytes mnemonic operands` line per instruction: the pad, the landing pad
/// and, on aarch64 with pac-ret, the `paciasp`/`pacibsp` that must follow
/// them; it stops at the first other instruction, where the prologue starts
/// (rustc and clang choose registers and frame pointers by their own
/// defaults there, which padding does not touch). Addresses are left out.
fn entry_code(obj: &Path) -> Result<Vec<String>> {
    let text = cmd::output(Command::new("llvm-objdump-14").arg("-d").arg(obj))?;
    // `   8: 5f 24 03 d5  \thint\t#34`: address, bytes, then the instruction.
    let insns = text.lines().filter_map(|l| {
        let (addr, rest) = l.split_once(':')?;
        let addr = addr.trim();
        (!addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit())).then(|| rest.split_once('\t'))?
    });
    let mut lines = Vec::new();
    for (bytes, mnemonic) in insns {
        let m = mnemonic.split_whitespace().collect::<Vec<_>>().join(" ");
        let first = m.split(' ').next().unwrap_or("");
        let pad = first.starts_with("nop") || first == "bti" || first == "endbr64" || first == "endbr32" || first == "xchg"
            || (first == "hint" && m.contains("#34"));
        let sign = matches!(first, "paciasp" | "pacibsp") || m == "hint #25" || m == "hint #27";
        if !pad && !sign {
            break;
        }
        lines.push(bytes.split_whitespace().collect::<Vec<_>>().join(" ") + "  " + &m);
        if sign {
            break;
        }
    }
    Ok(lines)
}

/// `nonleaf.rs` (rustc) against `nonleaf.c` (clang-14) for every shape and
/// every landing-pad/return-address-signing setting: the entry code (see
/// [`entry_code`]) and what pfe-check reads (pad, landing pad, record, its
/// offset, the section's flags) must be equal.
fn differential_nonleaf(
    ctx: &Ctx,
    target: &str,
    clang_target: &str,
    settings: &[(&str, &str)],
    shapes: &[&str],
) -> Result<()> {
    let dir = scratch(ctx, &format!("nonleaf-{target}"))?;
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (i, (rust_flag, c_flag)) in settings.iter().enumerate() {
        for shape in shapes {
            let tag = format!("{i}-{}", shape.replace(',', "_"));
            let r_obj = dir.join(format!("rust-{tag}.o"));
            let mut rc = rustc_for(ctx, target);
            rc.args(["--crate-type=lib", "-O", "--emit=obj", "-o"]).arg(&r_obj);
            rc.arg(format!("-Zpatchable-function-entry={shape}")).args(rust_flag.split_whitespace());
            cmd::output(rc.arg(source(ctx, "nonleaf.rs")))?;
            let c_obj = dir.join(format!("clang-{tag}.o"));
            let mut cc = Command::new("clang-14");
            cc.arg(format!("--target={clang_target}")).args(["-O2", "-c", "-o"]).arg(&c_obj);
            cc.arg(format!("-fpatchable-function-entry={shape}")).args(c_flag.split_whitespace());
            cmd::output(cc.arg(source(ctx, "nonleaf.c")))?;
            let (rust, clang) = (shape_of(&r_obj)?, shape_of(&c_obj)?);
            let (rust_code, clang_code) = (entry_code(&r_obj)?, entry_code(&c_obj)?);
            compared += 1;
            if rust != clang || rust_code != clang_code {
                mismatches.push(format!(
                    "{rust_flag} ={shape}:\n  rustc {rust}\n    {}\n  clang {clang}\n    {}",
                    rust_code.join("\n    "),
                    clang_code.join("\n    ")
                ));
            }
        }
    }
    println!("            {compared} non-leaf configurations equal to clang-14's: pad, landing pad, pac instruction, record");
    ensure!(mismatches.is_empty(), "rustc differs from clang-14:\n{}", mismatches.join("\n"));
    Ok(())
}

pub fn differential_nonleaf_aarch64(ctx: &Ctx) -> Result<()> {
    differential_nonleaf(
        ctx,
        "aarch64-unknown-linux-gnu",
        "aarch64-linux-gnu",
        &[
            ("", ""),
            ("-Zbranch-protection=bti", "-mbranch-protection=bti"),
            ("-Zbranch-protection=pac-ret", "-mbranch-protection=pac-ret"),
            ("-Zbranch-protection=bti,pac-ret", "-mbranch-protection=bti+pac-ret"),
            ("-Zbranch-protection=bti,pac-ret,leaf", "-mbranch-protection=bti+pac-ret+leaf"),
            ("-Zbranch-protection=bti,pac-ret,b-key", "-mbranch-protection=bti+pac-ret+b-key"),
        ],
        &["2", "4,2", "2,2", "3,1"],
    )
}

pub fn differential_nonleaf_x86_64(ctx: &Ctx) -> Result<()> {
    differential_nonleaf(
        ctx,
        "x86_64-unknown-linux-gnu",
        "x86_64-linux-gnu",
        &[("", ""), ("-Zcf-protection=branch", "-fcf-protection=branch")],
        &["2", "2,2", "16,16", "5,2"],
    )
}

pub fn differential_nonleaf_i686(ctx: &Ctx) -> Result<()> {
    differential_nonleaf(
        ctx,
        "i686-unknown-linux-gnu",
        "i686-linux-gnu",
        &[("", ""), ("-Zcf-protection=branch", "-fcf-protection=branch")],
        &["2", "5,3", "16,16"],
    )
}

/// riscv64 with the C extension (2-byte `c.nop`s) and without it (4-byte `nop`s).
pub fn differential_nonleaf_riscv64(ctx: &Ctx) -> Result<()> {
    differential_nonleaf(
        ctx,
        "riscv64gc-unknown-linux-gnu",
        "riscv64-linux-gnu",
        &[("", "-march=rv64gc"), ("-Ctarget-feature=-c", "-march=rv64g")],
        &["2", "4", "4,2", "3,1"],
    )
}

/// The calls to mcount in `symbol` of `exe` (linked with `--emit-relocs`):
/// relocations against `mcount`, `_mcount`, ... inside the function's bytes.
/// Calls through the PLT have no name in the disassembly, the relocations
/// kept by `--emit-relocs` do.
fn mcount_calls(exe: &Path, symbol: &str) -> Result<usize> {
    let text = cmd::output(
        Command::new("llvm-objdump-14").arg("-dr").arg(format!("--disassemble-symbols={symbol}")).arg(exe),
    )?;
    let lines: Vec<&str> = text.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.ends_with(&format!("<{symbol}>:")))
        .with_context(|| format!("no `{symbol}` in {}", exe.display()))?;
    let start = u64::from_str_radix(lines[head].split_whitespace().next().unwrap_or(""), 16)?;
    let (mut end, mut relocations) = (start, Vec::new());
    for line in &lines[head + 1..] {
        if line.trim().is_empty() {
            break;
        }
        let Some((offset, rest)) = line.trim_start().split_once(':') else { continue };
        let Ok(offset) = u64::from_str_radix(offset, 16) else { continue };
        let mut words = rest.split_whitespace();
        match words.next() {
            // A relocation: its offset, its symbol (`mcount@GLIBC_2.2.5-0x4`).
            Some(kind) if kind.starts_with("R_") => relocations.push((offset, words.next().unwrap_or("").to_string())),
            // An instruction: it ends after its bytes.
            _ => end = end.max(offset + rest.split('\t').next().unwrap_or("").split_whitespace().count() as u64),
        }
    }
    let is_mcount = |name: &str| {
        let bare = name.trim_start_matches('_');
        bare == "mcount" || bare.starts_with("mcount@") || bare.starts_with("mcount-") || bare.starts_with("mcount+")
    };
    Ok(relocations.iter().filter(|(at, name)| (start..end).contains(at) && is_mcount(name)).count())
}

/// `outer` inlines small functions twice each, from its own crate and from
/// another; whatever the optimization and LTO settings, it calls mcount once
/// (v1 ran the instrumenter before ThinLTO and LTO inlining: 3 calls at
/// `-O`, 5 with `-C lto=thin` or `fat`).
pub fn mcount_once(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "mcount-once")?;
    let configs: &[(&str, &str, &[&str])] = &[
        ("x86_64-unknown-linux-gnu", "opt-level=0", &["-Copt-level=0"]),
        ("x86_64-unknown-linux-gnu", "-O", &["-O"]),
        ("x86_64-unknown-linux-gnu", "-O, 1 codegen unit", &["-O", "-Ccodegen-units=1"]),
        ("x86_64-unknown-linux-gnu", "-O -C lto=thin", &["-O", "-Clto=thin"]),
        ("x86_64-unknown-linux-gnu", "-O -C lto=fat", &["-O", "-Clto=fat"]),
        ("x86_64-unknown-linux-gnu", "-O -Z new-llvm-pass-manager=no", &["-O", "-Znew-llvm-pass-manager=no"]),
        ("x86_64-unknown-linux-gnu", "-O =16,16", &["-O", "-Zpatchable-function-entry=16,16"]),
        ("aarch64-unknown-linux-gnu", "-O -C lto=fat", &["-O", "-Clto=fat"]),
        ("aarch64-unknown-linux-gnu", "-O", &["-O"]),
    ];
    let mut wrong = Vec::new();
    for (i, (target, what, flags)) in configs.iter().enumerate() {
        let sub = dir.join(i.to_string());
        fs::create_dir_all(&sub)?;
        let common = |c: &mut Command| {
            c.arg("-Zinstrument-mcount").args(*flags);
        };
        let mut dep = rustc_for(ctx, target);
        common(&mut dep);
        cmd::output(dep.arg("--out-dir").arg(&sub).arg(source(ctx, "mcount_dep.rs")))?;
        let exe = sub.join("mcount_main");
        let mut main = rustc_for(ctx, target);
        common(&mut main);
        main.arg("--extern").arg(format!("mcount_dep={}", sub.join("libmcount_dep.rlib").display()));
        main.arg("-Clink-arg=-Wl,--emit-relocs");
        cmd::output(main.arg("-o").arg(&exe).arg(source(ctx, "mcount_main.rs")))?;
        let calls = mcount_calls(&exe, "outer")?;
        println!("            {target} {what}: {calls} mcount call(s) in outer");
        if calls != 1 {
            wrong.push(format!("{target} {what}: {calls} calls"));
        }
    }
    ensure!(wrong.is_empty(), "outer must call mcount exactly once: {}", wrong.join("; "));
    Ok(())
}

/// Whether an object (or, for nvptx, assembly) has patchable-entry records.
fn has_records(out: &Path) -> Result<bool> {
    let data = fs::read(out)?;
    Ok(data.windows(28).any(|w| w == b"__patchable_function_entries"))
}

/// Every target `rustc --print target-list` knows, and custom JSON targets,
/// compiled through LLVM's code generator with `-Z instrument-mcount`, with
/// `-Z patchable-function-entry=2,1` and with both: never a crash, and
/// padding either refused with an error or present with its records, never
/// accepted silently without them. A target that cannot compile even without
/// the flags (say, no LLVM backend for it here) is counted and skipped.
pub fn every_target(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "every-target")?;
    let src = dir.join("f.rs");
    fs::write(&src, format!("{NO_CORE}#[no_mangle]\npub fn f() {{}}\n"))?;
    let list = cmd::output(rustc(ctx).args(["--print", "target-list"]))?;
    let mut targets: Vec<String> = list.lines().map(str::to_string).collect();
    for json in ["x86_64-kernel-elf", "x86_64-windows-elf", "x86_64-coff", "x86_64-macho", "x86_64-fentry"] {
        targets.push(ctx.root.join("tests/e2e/targets").join(format!("{json}.json")).display().to_string());
    }
    let (mut tried, mut padded, mut refused, mut mcount_ok, mut mcount_refused) = (0, 0, 0, 0, 0);
    let mut skipped = Vec::new();
    let mut wrong = Vec::new();
    for target in &targets {
        let short = Path::new(target).file_stem().map_or(target.clone(), |s| s.to_string_lossy().into_owned());
        let emit = if target.starts_with("nvptx") { "asm" } else { "obj" };
        let run = |name: &str, flags: &[&str]| -> Result<(Outcome, String, std::path::PathBuf)> {
            let out = dir.join(format!("{short}-{name}.{emit}"));
            let mut c = rustc(ctx);
            c.args(["--target", target, "-O", &format!("--emit={emit}"), "-o"]).arg(&out).args(flags).arg(&src);
            let (how, stderr) = outcome(&mut c)?;
            Ok((how, stderr, out))
        };
        let (base, _, _) = run("base", &[])?;
        if base != Outcome::Ok {
            skipped.push(short.clone());
            continue;
        }
        for (name, flags) in [
            ("mcount", &["-Zinstrument-mcount"][..]),
            ("pfe", &["-Zpatchable-function-entry=2,1"][..]),
            ("both", &["-Zpatchable-function-entry=2,1", "-Zinstrument-mcount"][..]),
        ] {
            tried += 1;
            let (how, stderr, out) = run(name, flags)?;
            match (name, how) {
                (_, Outcome::Crash) => wrong.push(format!("{short} {flags:?}: crash\n{}", cmd::tail(&stderr, 4))),
                ("mcount", Outcome::Ok) => mcount_ok += 1,
                ("mcount", _) => {
                    mcount_refused += 1;
                    if !stderr.contains("`-Z instrument-mcount` is not supported") {
                        wrong.push(format!("{short}: -Zinstrument-mcount failed otherwise:\n{}", cmd::tail(&stderr, 4)));
                    }
                }
                (_, Outcome::Ok) => {
                    if name == "pfe" {
                        padded += 1;
                    }
                    if !has_records(&out)? {
                        wrong.push(format!("{short} {flags:?}: accepted, but no records in the output"));
                    }
                }
                (_, Outcome::Error) => {
                    if name == "pfe" {
                        refused += 1;
                    }
                    let ok = stderr.contains("`-Z patchable-function-entry` is not supported")
                        || stderr.contains("`-Z instrument-mcount` is not supported");
                    if !ok {
                        wrong.push(format!("{short} {flags:?}: failed otherwise:\n{}", cmd::tail(&stderr, 4)));
                    }
                }
            }
        }
    }
    println!(
        "            {} targets ({} skipped: no code generation here without the flags), {tried} compilations: \
         padded with records on {padded}, refused on {refused}; mcount on {mcount_ok}, refused on {mcount_refused}; \
         {} wrong",
        targets.len(),
        skipped.len(),
        wrong.len()
    );
    if !skipped.is_empty() {
        println!("            skipped: {}", skipped.join(" "));
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

/// `cargo +pfe test` runs a doc example with the toolchain's own rustdoc,
/// and `cargo +pfe doc` documents the crate.
pub fn cargo_test_and_doc(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "cargo-doc")?;
    fs::create_dir_all(dir.join("src"))?;
    fs::write(dir.join("Cargo.toml"), "[package]\nname = \"documented\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")?;
    fs::write(
        dir.join("src/lib.rs"),
        "/// Doubles.\n///\n/// ```\n/// assert_eq!(documented::double(21), 42);\n/// ```\npub fn double(x: u32) -> u32 {\n    x * 2\n}\n\n\
         #[test]\nfn unit() {\n    assert_eq!(double(2), 4);\n}\n",
    )?;
    let cargo = |args: &[&str]| -> Result<String> {
        cmd::output(
            Command::new(ctx.toolchain().join("bin/cargo"))
                .args(args)
                .env("RUSTFLAGS", "-Zpatchable-function-entry=16,16")
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .current_dir(&dir),
        )
    };
    let test = cargo(&["test", "--offline"])?;
    ensure!(test.contains("test src/lib.rs - double (line 3) ... ok"), "the doc example did not run:\n{test}");
    ensure!(test.contains("test unit ... ok"), "the unit test did not run:\n{test}");
    cargo(&["doc", "--offline"])?;
    let page = dir.join("target/doc/documented/fn.double.html");
    ensure!(page.is_file(), "cargo doc wrote no {}", page.display());
    println!("            doc example and unit test passed; {} written", page.display());
    Ok(())
}

/// `library/core` in one of the kernel's shapes, with `-Z min-function-alignment=align`:
/// every function padded as `shape`, recorded once, its patch site `align`-aligned.
/// Built again without the alignment flag, the same audit must find misaligned
/// sites where the target's own alignment is not enough (`needed`; x86_64 at
/// `-O` aligns functions to 16 by itself). Prints aligned sites / functions
/// with and without the flag.
fn core_kernel(ctx: &Ctx, target: &str, shape: &str, align: u64, opt: &[&str], needed: bool) -> Result<()> {
    let expect: pfe_check::Expect = shape.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let align_flag = format!("-Zmin-function-alignment={align}");
    let mut with: Vec<&str> = opt.to_vec();
    with.push(&align_flag);
    let audit = |flags: &[&str]| -> Result<(usize, usize, Vec<String>)> {
        let rlib = e2e::core_rlib_with(ctx, target, Some(shape), flags)?;
        let (mut functions, mut sites, mut wrong) = (0, 0, Vec::new());
        let mut misaligned = 0;
        for r in reports(&rlib)? {
            functions += r.functions.len();
            ensure!(r.orphans.is_empty() && r.problems.is_empty(), "{}: {:?} {:?}", r.path, r.orphans, r.problems);
            wrong.extend(r.offenders(expect, &[]).into_iter().map(|(n, why)| format!("{n}: {}", why.join("; "))));
            let (checked, bad) = r.misaligned(align, &[]);
            sites += checked;
            misaligned += bad.len();
            wrong.extend(bad.into_iter().map(|(n, why)| format!("{n}: {why}")));
        }
        ensure!(functions > 500, "only {functions} functions in core?");
        Ok((functions, sites - misaligned, wrong))
    };
    let (functions, aligned, wrong) = audit(&with)?;
    let (functions_without, aligned_without, _) = audit(opt)?;
    println!(
        "            {target} ={shape} {}: with {align_flag}: {aligned}/{functions} sites {align}-aligned; \
         without: {aligned_without}/{functions_without}",
        opt.join(" ")
    );
    ensure!(
        wrong.is_empty(),
        "{} problems with {align_flag}:\n{}",
        wrong.len(),
        wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    ensure!(aligned == functions, "{aligned} aligned sites for {functions} functions");
    ensure!(
        !needed || aligned_without < functions_without,
        "without {align_flag} every site is {align}-aligned anyway: the audit cannot tell"
    );
    Ok(())
}

pub fn core_kernel_x86_64(ctx: &Ctx) -> Result<()> {
    core_kernel(ctx, "x86_64-unknown-linux-gnu", "16,16", 16, &[], false)
}

pub fn core_kernel_x86_64_os(ctx: &Ctx) -> Result<()> {
    core_kernel(ctx, "x86_64-unknown-linux-gnu", "16,16", 16, &["-Copt-level=s"], true)
}

pub fn core_kernel_aarch64(ctx: &Ctx) -> Result<()> {
    core_kernel(ctx, "aarch64-unknown-linux-gnu", "4,2", 8, &[], true)
}

pub fn core_kernel_riscv64(ctx: &Ctx) -> Result<()> {
    core_kernel(ctx, "riscv64gc-unknown-linux-gnu", "4", 4, &[], true)
}

/// The functions rustc makes up rather than code-generates from MIR (the C
/// `main`, the allocator shim) get the padding and the alignment too: in an
/// executable built with `=16,16` and `-Z min-function-alignment=64`, each is
/// preceded by 16 nops, recorded once, its patch site 64-aligned.
pub fn made_up_functions(ctx: &Ctx) -> Result<()> {
    let dir = scratch(ctx, "made-up")?;
    let exe = dir.join("made_up");
    cmd::output(
        rustc(ctx)
            .args(["-O", "-Zpatchable-function-entry=16,16", "-Zmin-function-alignment=64", "-o"])
            .arg(&exe)
            .arg(source(ctx, "made_up.rs")),
    )?;
    cmd::output(&mut Command::new(&exe))?;
    let reports = reports(&exe)?;
    let mut seen = Vec::new();
    for name in ["main", "__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rust_alloc_zeroed"] {
        let f = function(&reports, name).with_context(|| format!("no `{name}` in {}", exe.display()))?;
        ensure!(
            f.prefix_nops == 16 && f.entry_nops == 0 && f.records == 1,
            "{name}: {} nops before, {} after, {} records",
            f.prefix_nops,
            f.entry_nops,
            f.records
        );
        ensure!(f.site_alignment.map_or(false, |a| a >= 64), "{name}: patch site aligned to {:?}", f.site_alignment);
        seen.push(name);
    }
    println!("            padded =16,16, recorded, patch site 64-aligned: {}", seen.join(", "));
    Ok(())
}
