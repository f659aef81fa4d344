//! objtool's word on Rust code, where objtool reads the whole of
//! `vmlinux.o` (x86 with `CONFIG_X86_KERNEL_IBT` or `CONFIG_LTO_CLANG`:
//! kbuild's `delay-objtool`). Rust code is in `vmlinux.o` like C code, so
//! objtool checks it there like C code; the kernel's IBT build must give it
//! nothing to report on Rust symbols.
//!
//! What objtool said is in make's log, printed by the command that links
//! `vmlinux.o` (`  LD      vmlinux.o`, then objtool on it). A make that
//! has nothing to link prints none of it, so the log of the last make that
//! linked `vmlinux.o` is kept (`kernel-link-ARCH-VARIANT.log`, with that
//! `vmlinux.o`'s date); when the `vmlinux.o` in the build directory is not
//! the one that log is about (a build by hand, an interrupted run, or no
//! saved log), it is removed before make, so make links it and objtool runs
//! again.

use super::arch::{ArchData, Variant};
use super::audit::{parse_symbols, Symbol};
use super::config::config_value;
use super::Paths;
use crate::cmd;
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

/// Whether objtool reads `vmlinux.o` in this configuration (kbuild's
/// `delay-objtool := $(or $(CONFIG_LTO_CLANG),$(CONFIG_X86_KERNEL_IBT))`).
pub fn reads_vmlinux_o(config: &str) -> bool {
    config_value(config, "CONFIG_X86_KERNEL_IBT") == "y" || config_value(config, "CONFIG_LTO_CLANG") == "y"
}

/// The saved log of the last make that linked `vmlinux.o`, and the record
/// of which `vmlinux.o` it made.
fn saved(ctx: &Ctx, arch: &ArchData, variant: &Variant) -> (PathBuf, PathBuf) {
    let name = format!("kernel-link-{}-{}", arch.name, variant.name);
    (ctx.logs().join(format!("{name}.log")), ctx.state().join(name))
}

/// A file's date, to the nanosecond, as text.
fn date(path: &Path) -> Option<String> {
    let modified = fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let since = modified.duration_since(UNIX_EPOCH).ok()?;
    Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
}

/// Before make: when the saved log is not about the `vmlinux.o` in the
/// build directory, removes it, so make links it again (and objtool reads
/// it again). Returns whether it did.
pub fn before_make(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant) -> Result<bool> {
    let vmlinux_o = paths.out(arch, variant).join("vmlinux.o");
    let (log, record) = saved(ctx, arch, variant);
    let Some(now) = date(&vmlinux_o) else { return Ok(false) };
    if log.is_file() && fs::read_to_string(&record).ok().as_deref() == Some(&*now) {
        return Ok(false);
    }
    println!("    no saved objtool output for {}: removing it for make to link it again", vmlinux_o.display());
    fs::remove_file(&vmlinux_o)?;
    Ok(true)
}

/// Whether make's log shows it linked `vmlinux.o` (kbuild's quiet line).
pub fn linked_vmlinux_o(log: &str) -> bool {
    log.lines().any(|l| l.split_whitespace().eq(["LD", "vmlinux.o"]))
}

/// After make: when this make linked `vmlinux.o`, keeps its log and the
/// date of the `vmlinux.o` it made.
pub fn after_make(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, make_log: &Path) -> Result<()> {
    let text = fs::read_to_string(make_log).with_context(|| format!("cannot read {}", make_log.display()))?;
    if !linked_vmlinux_o(&text) {
        return Ok(());
    }
    let vmlinux_o = paths.out(arch, variant).join("vmlinux.o");
    let Some(now) = date(&vmlinux_o) else { bail!("make linked {} but it is not there", vmlinux_o.display()) };
    let (log, record) = saved(ctx, arch, variant);
    fs::write(&log, text)?;
    fs::write(&record, now)?;
    Ok(())
}

/// objtool's lines in make's log: its warnings and errors all say
/// `objtool:` (`vmlinux.o: warning: objtool: SYMBOL+0xOFF: WHAT`).
pub fn objtool_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("objtool:")).collect()
}

/// Whether `name` is a Rust symbol by its mangling: v0 (`_R`, then an
/// encoding version or a path's tag; what 6.1 builds with,
/// `-Csymbol-mangling-version=v0`) or legacy (`_ZN...E`, rustc's default).
fn mangled_rust(name: &str) -> bool {
    let v0 = name.strip_prefix("_R").map_or(false, |r| r.starts_with(|c: char| "NCMXYIB".contains(c) || c.is_ascii_digit()));
    let legacy = name.starts_with("_ZN") && name.ends_with('E');
    v0 || legacy
}

/// The Rust symbols a line of objtool's names: mangled Rust names, names of
/// functions of the rustc-built objects (`rust`: the C-named ones such as
/// `rust_begin_unwind` and `__rust_alloc` included), and the C helpers
/// Rust code calls (`rust_helper_*`). A name may be a section's suffix
/// (`.text._RNv...`) or carry LLVM's suffixes (`_ZN...E.llvm.123`).
pub fn rust_names<'a>(line: &'a str, rust: &BTreeSet<String>) -> Vec<&'a str> {
    let mut names = Vec::new();
    for token in line.split(|c: char| c.is_whitespace() || matches!(c, ':' | '+' | '(' | ')' | ',' | '\'' | '"' | '!' | '<' | '>')) {
        let named = token.split('.').any(|part| mangled_rust(part) || rust.contains(part) || part.starts_with("rust_helper_"));
        if named && !token.is_empty() && !names.contains(&token) {
            names.push(token);
        }
    }
    names
}

/// What objtool said, counted.
#[derive(Debug, PartialEq)]
pub struct Report {
    /// objtool's lines in the log.
    pub lines: usize,
    /// Those that name a Rust symbol.
    pub rust: Vec<String>,
}

/// The places a line of objtool's gives only as a section and an offset
/// (`notrack prefix found at .text:0x14d5f5`, `.rodata+0x11a50`).
pub fn section_offsets(line: &str) -> Vec<(&str, u64)> {
    let mut out = Vec::new();
    for token in line.split(|c: char| c.is_whitespace() || c == ',') {
        let token = token.trim_end_matches(':');
        let Some(at) = token.find([':', '+']) else { continue };
        let (section, offset) = (&token[..at], &token[at + 1..]);
        let Some(hex) = offset.strip_prefix("0x") else { continue };
        if let (true, Ok(offset)) = (section.starts_with('.'), u64::from_str_radix(hex, 16)) {
            out.push((section, offset));
        }
    }
    out
}

/// Counts objtool's lines in `log` and keeps those about Rust code: a line
/// names a Rust symbol, or gives a place in a function of `vmlinux.o`
/// (`symbols`, from its symbol table) that is a Rust function.
pub fn report(log: &str, rust: &BTreeSet<String>, symbols: &[Symbol]) -> Report {
    let lines = objtool_lines(log);
    let mut named = Vec::new();
    for line in &lines {
        if !rust_names(line, rust).is_empty() {
            named.push(line.to_string());
            continue;
        }
        let within = section_offsets(line).into_iter().find_map(|(section, offset)| {
            symbols.iter().find(|s| s.section == section && s.value <= offset && offset < s.value.saturating_add(s.size))
        });
        if let Some(f) = within.filter(|f| !rust_names(&f.name, rust).is_empty()) {
            named.push(format!("{line} (in {})", f.name));
        }
    }
    Report { lines: lines.len(), rust: named }
}

/// objtool on `vmlinux.o` in the saved log of the build: none of its lines
/// may name a Rust symbol; in the control (`jump_tables`, Rust code with
/// jump tables) some must, or the check could not fail.
pub fn check(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, rust: &BTreeSet<String>, jump_tables: bool) -> Result<Report> {
    let vmlinux_o = paths.out(arch, variant).join("vmlinux.o");
    let (log, record) = saved(ctx, arch, variant);
    if fs::read_to_string(&record).ok() != date(&vmlinux_o) {
        bail!("{} is not about the vmlinux.o in {}: objtool's output on it is unknown", log.display(), vmlinux_o.display());
    }
    let text = fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    let symbols = parse_symbols(&cmd::output(Command::new("llvm-objdump-14").arg("-t").arg(&vmlinux_o))?);
    let report = report(&text, rust, &symbols);
    if jump_tables {
        if report.rust.is_empty() {
            bail!(
                "objtool said {} things in {} and none names a Rust symbol, though Rust code has jump tables \
                 in this control: the check could not fail",
                report.lines,
                log.display()
            );
        }
        return Ok(report);
    }
    if !report.rust.is_empty() {
        bail!(
            "objtool said {} things in {} and {} of them name Rust symbols; the first:\n{}",
            report.lines,
            log.display(),
            report.rust.len(),
            report.rust.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_configurations_have_objtool_read_vmlinux_o() {
        assert!(reads_vmlinux_o("CONFIG_X86_KERNEL_IBT=y\n"));
        assert!(reads_vmlinux_o("CONFIG_LTO_CLANG=y\n"));
        assert!(!reads_vmlinux_o("CONFIG_OBJTOOL=y\n# CONFIG_X86_KERNEL_IBT is not set\n"));
    }

    #[test]
    fn the_link_of_vmlinux_o_is_seen_in_the_log() {
        assert!(linked_vmlinux_o("  AR      vmlinux.a\n  LD      vmlinux.o\n  MODPOST vmlinux.symvers\n"));
        assert!(!linked_vmlinux_o("  LD      arch/x86/boot/setup.elf\n  LD [M]  samples/rust/rust_minimal.ko\n"));
    }

    #[test]
    fn rust_symbols_are_told_by_their_mangling_and_by_the_audit() {
        let rust: BTreeSet<String> = ["rust_begin_unwind".to_string(), "__rust_alloc".to_string()].into();
        let cases = [
            ("vmlinux.o: warning: objtool: _RNvNtCshNso7GI6UKi_4core3fmt5write+0x1c3: sibling call from callable instruction with modified stack frame", true),
            ("vmlinux.o: warning: objtool: _ZN4core3fmt5write17h0123456789abcdefE+0x10: unreachable instruction", true),
            ("vmlinux.o: warning: objtool: rust_begin_unwind+0x61: unreachable instruction", true),
            ("vmlinux.o: warning: objtool: .text._RNvCs1_4core4main+0x4: data relocation to !ENDBR: .text+0x1", true),
            ("vmlinux.o: warning: objtool: do_sys_poll+0x1c3: unreachable instruction", false),
            ("vmlinux.o: warning: objtool: _raw_spin_lock+0x4: call to rust_helper_BUG() leaves .noinstr.text section", true),
            ("vmlinux.o: warning: objtool: __rust_alloc+0x1: missing int3 after ret", true),
            ("vmlinux.o: warning: objtool: _RDATA+0x1: something", false),
        ];
        for (line, named) in cases {
            assert_eq!(!rust_names(line, &rust).is_empty(), named, "{line}");
        }
        assert_eq!(objtool_lines("  DESCEND objtool\n  CC      tools/objtool/check.o\n"), Vec::<&str>::new());
    }

    fn testdata(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/testdata").join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The objtool line of the first IBT kernel (`-Zno-jump-tables`, the
    /// panic handler's `loop {}` after `BUG()` still there), as make
    /// printed it: the check fails on it. `rust_begin_unwind` is a C name:
    /// it counts as Rust because it is a function of `rust/kernel.o` (the
    /// audit's list), not by its mangling.
    #[test]
    fn the_panic_handler_s_dead_loop_fails_the_check() {
        let log = testdata("x86_64-ibt-panic-loop.objtool");
        let audited: BTreeSet<String> = ["rust_begin_unwind".to_string()].into();
        let found = report(&log, &audited, &[]);
        assert_eq!((found.lines, found.rust.len()), (1, 1));
        assert!(found.rust[0].contains("rust_begin_unwind+0x65: unreachable instruction"));
        assert_eq!(report(&log, &BTreeSet::new(), &[]).rust.len(), 0, "a C name, known only from the audit");
    }

    /// The objtool lines of the IBT control (Rust with jump tables), as make
    /// printed them, and the symbols of its `vmlinux.o` that hold the places
    /// some lines give only as `.text:0x...`: 99 jump-table entries that
    /// point at Rust code without `endbr64`, named, and 23 `notrack` jumps,
    /// found inside Rust functions. All 122 are about Rust code.
    #[test]
    fn rust_jump_tables_fail_the_check_by_name_and_by_place() {
        let log = testdata("x86_64-ibt-jump-tables.objtool");
        let symbols = parse_symbols(&testdata("x86_64-ibt-jump-tables.vmlinux.o.symbols"));
        assert_eq!(symbols.len(), 19);
        let by_name = report(&log, &BTreeSet::new(), &[]);
        assert_eq!((by_name.lines, by_name.rust.len()), (122, 99));
        let found = report(&log, &BTreeSet::new(), &symbols);
        assert_eq!((found.lines, found.rust.len()), (122, 122));
        let notrack = found.rust.iter().filter(|l| l.contains("notrack prefix found at .text:0x")).count();
        assert_eq!(notrack, 23);
        assert!(found.rust.iter().any(|l| l.ends_with("(in _RNvMs7_NtCshNso7GI6UKi_4core3fmtNtB5_9Formatter7padding)")), "{found:?}");
        assert_eq!(section_offsets("vmlinux.o: warning: objtool: .rodata+0x11a50: data relocation to !ENDBR: x+0x8f"), [(".rodata", 0x11a50)]);
    }
}
