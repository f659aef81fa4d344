//! The rustc-built objects of one kernel through the toolchain's
//! `pfe-check`, and what the ftrace boots' console checks need from them
//! (`llvm-objdump-14`: symbols, the test function's first instructions).

use super::arch::{ArchData, Boot, Variant};
use super::config::config_value;
use super::objtool;
use super::orc;
use super::toolchain::Toolchain;
use super::{Paths, NOTRACE};
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Audit {
    pub objects: usize,
    pub functions: usize,
    /// What was checked, for the summary.
    pub summary: String,
    /// Names of the functions with a record, built in and in the module
    /// (`rust_minimal.o`), and of every Rust function (for the control).
    pub built_in: Vec<String>,
    pub module: Vec<String>,
    pub all: Vec<String>,
    /// Functions in `.init.text`: freed after init, and ftrace with them.
    pub init_text: Vec<String>,
    /// Weak functions: a strong one of the same name elsewhere replaces
    /// them at link time (the Rust intrinsics the arch has in assembly).
    pub weak: Vec<String>,
    /// The module's functions in its `.text`, to name traced addresses.
    pub module_text: Vec<Symbol>,
    /// Where the kernel has ORC (x86 `CONFIG_UNWINDER_ORC`): its Rust
    /// functions with unwind data at entry and every return address.
    pub orc: Option<orc::Count>,
}

/// A function symbol of an object, as `llvm-objdump -t` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub name: String,
    pub section: String,
    pub value: u64,
    pub size: u64,
    pub weak: bool,
}

/// The function symbols of `object` (`llvm-objdump-14 -t`).
fn function_symbols(object: &Path) -> Result<Vec<Symbol>> {
    Ok(parse_symbols(&cmd::output(Command::new("llvm-objdump-14").arg("-t").arg(object))?))
}

/// `ADDRESS FLAGS SECTION<tab>SIZE [.hidden] NAME`, functions (`F`) only.
pub fn parse_symbols(text: &str) -> Vec<Symbol> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once('\t') else { continue };
        let (Some(address), Some(section)) = (left.split_whitespace().next(), left.split_whitespace().last()) else { continue };
        let flags = left.get(address.len()..left.len() - section.len()).unwrap_or("");
        if !flags.split_whitespace().any(|f| f == "F") {
            continue;
        }
        let mut words = right.split_whitespace();
        let (Some(size), Some(name)) = (words.next(), right.split_whitespace().last()) else { continue };
        let (Ok(value), Ok(size)) = (u64::from_str_radix(address, 16), u64::from_str_radix(size, 16)) else { continue };
        let weak = flags.split_whitespace().any(|f| f == "w");
        out.push(Symbol { name: name.to_string(), section: section.to_string(), value, size, weak });
    }
    out
}

/// The objects of `dir` that rustc built: kbuild's `.NAME.o.cmd` says which
/// compiler made each (`rust/` also holds C objects: helpers, exports).
fn rustc_objects(dir: &Path, rustc: &Path) -> Result<Vec<PathBuf>> {
    let mut objects = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return Ok(objects) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".o") {
            continue;
        }
        let cmd_file = dir.join(format!(".{name}.cmd"));
        let text = fs::read_to_string(&cmd_file).unwrap_or_default();
        let first = text.lines().next().unwrap_or("");
        if first.contains(&*rustc.to_string_lossy()) {
            objects.push(entry.path());
        }
    }
    objects.sort();
    Ok(objects)
}

/// Every rustc-built object of the kernel (`rust/*.o`, `samples/rust/*.o`)
/// through the toolchain's `pfe-check --expect` of the variant (and
/// `--align` where it has one), with `--list` for the names the boot checks
/// match ftrace's list against. The notrace test function is left out of
/// `--expect` and checked to have no record.
pub fn audit(ctx: &Ctx, paths: &Paths, tc: &Toolchain, arch: &ArchData, variant: &Variant) -> Result<Audit> {
    let step = Step::start(&format!("audit the rustc-built objects (pfe-check --expect {})", variant.expect));
    let out = paths.out(arch, variant);
    let mut objects = Vec::new();
    for dir in ["rust", "samples/rust"] {
        objects.extend(rustc_objects(&out.join(dir), &tc.rustc)?);
    }
    if !objects.iter().any(|o| o.ends_with("samples/rust/rust_minimal.o")) {
        bail!("no rustc-built samples/rust/rust_minimal.o in {}", out.display());
    }
    let help = cmd::output(Command::new(&tc.pfe_check).arg("--help"))?;
    if !help.contains("--align") {
        bail!("{} has no --align: run `./x build`, which installs this checkout's pfe-check", tc.pfe_check.display());
    }
    let ftrace = matches!(variant.boot, Boot::Ftrace { .. });
    let mut check = Command::new(&tc.pfe_check);
    check.args(["--list", "--expect", variant.expect]);
    if let Some(align) = variant.align {
        check.args(["--align", &align.to_string()]);
    }
    if ftrace && variant.expect != "0" {
        check.args(["--skip", NOTRACE]);
    }
    check.args(&objects);
    let output = check.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{}`", cmd::show(&check)))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let log = ctx.logs().join(format!("kernel-pfe-check-{}-{}.log", arch.name, variant.name));
    fs::write(&log, format!("$ {}\n{text}{}", cmd::show(&check), String::from_utf8_lossy(&output.stderr)))?;
    let offenders = text.lines().filter(|l| !l.starts_with("  0x")).collect::<Vec<_>>().join("\n");
    if !output.status.success() {
        bail!(
            "`pfe-check --expect {}` failed on the rustc-built objects ({}); without the function list, {}:\n{}",
            variant.expect,
            output.status,
            log.display(),
            cmd::tail(&format!("{offenders}\n{}", String::from_utf8_lossy(&output.stderr)), 40)
        );
    }
    let (counted, functions) = summary_counts(&text)?;
    if counted != objects.len() {
        bail!("pfe-check reported {counted} objects of {}; its output is in {}", objects.len(), log.display());
    }
    let listed = listed_functions(&text);
    let mut audit = Audit {
        objects: objects.len(),
        functions,
        summary: String::new(),
        built_in: Vec::new(),
        module: Vec::new(),
        all: Vec::new(),
        init_text: Vec::new(),
        weak: Vec::new(),
        module_text: Vec::new(),
        orc: None,
    };
    // What only the ftrace boots' console checks read.
    if ftrace {
        for object in &objects {
            for symbol in function_symbols(object)? {
                if symbol.section.starts_with(".init") {
                    audit.init_text.push(symbol.name.clone());
                }
                if symbol.weak {
                    audit.weak.push(symbol.name);
                }
            }
        }
        let module_ko = out.join("samples/rust/rust_minimal.ko");
        audit.module_text = function_symbols(&module_ko)?.into_iter().filter(|s| s.section == ".text").collect();
    }
    for (object, name, records) in &listed {
        audit.all.push(name.clone());
        if *records > 0 {
            if object.ends_with("samples/rust/rust_minimal.o") {
                audit.module.push(name.clone());
            } else {
                audit.built_in.push(name.clone());
            }
        }
    }
    if ftrace {
        match listed.iter().find(|(_, name, _)| name == NOTRACE) {
            None => bail!("no function {NOTRACE} in the rustc-built objects: the kernel series' test is missing"),
            Some((_, _, records)) if *records > 0 => {
                bail!("{NOTRACE} has {records} records: #[patchable_function_entry(prefix_nops = 0, entry_nops = 0)] did not hold")
            }
            Some(_) => {}
        }
    }
    let mut entry = String::new();
    if ftrace {
        let found = entry_instructions(&out.join("vmlinux"), arch.objdump, "rust_ftrace_target", variant.entry.len().max(4))?;
        let head: Vec<&str> = found.iter().take(variant.entry.len()).map(String::as_str).collect();
        if !variant.entry.is_empty() && head != variant.entry {
            bail!("rust_ftrace_target in vmlinux starts {found:?}, not {:?}", variant.entry);
        }
        entry = format!("; rust_ftrace_target in vmlinux starts `{}`", found.join("; "));
    }
    // ORC: every Rust function linked into vmlinux must be unwindable
    // (objtool on Rust objects, the kernel series' kbuild patch).
    let config = fs::read_to_string(out.join(".config")).unwrap_or_default();
    if config_value(&config, "CONFIG_UNWINDER_ORC") == "y" {
        let rust: BTreeSet<String> =
            listed.iter().filter(|(o, _, _)| !o.ends_with("samples/rust/rust_minimal.o")).map(|(_, n, _)| n.clone()).collect();
        let count = orc::count_vmlinux(&out.join("vmlinux"), &rust)?;
        // The IBT control's Rust jump tables may hide code from objtool:
        // there the count is shown, not required.
        if count.unwindable != count.functions && !variant.jump_tables {
            bail!(
                "ORC: {} of {} Rust functions in vmlinux are unwindable at entry and at every return address; not: {}",
                count.unwindable,
                count.functions,
                count.not.join(", ")
            );
        }
        entry += &format!(
            "; ORC: {} of {} Rust functions ({} call sites; {} ORC entries in vmlinux)",
            count.unwindable, count.functions, count.call_sites, count.entries
        );
        if count.unwindable != count.functions {
            entry += &format!(" (not: {}; Rust with jump tables, not required)", count.not.join(", "));
        }
        audit.orc = Some(count);
    }
    // objtool, where it reads vmlinux.o (IBT): nothing to say on Rust code.
    if objtool::reads_vmlinux_o(&config) {
        let rust: BTreeSet<String> = listed.iter().map(|(_, n, _)| n.clone()).collect();
        let report = objtool::check(ctx, paths, arch, variant, &rust, variant.jump_tables)?;
        entry += &format!("; objtool on vmlinux.o: {} lines, {} naming Rust", report.lines, report.rust.len());
        if variant.jump_tables {
            entry += " (Rust with jump tables: the check fails here, as it must)";
        }
    }
    for object in &objects {
        println!("    {}", object.strip_prefix(&out).unwrap_or(object).display());
    }
    audit.summary = format!(
        "--expect {} met{}{}; {} functions with a record outside rust_minimal.o, {} in it",
        variant.expect,
        variant.align.map_or(String::new(), |a| format!(", patch sites {a}-aligned")),
        if ftrace && variant.expect != "0" { format!(" ({NOTRACE}: no nops, no record)") } else { String::new() },
        audit.built_in.len(),
        audit.module.len()
    ) + &entry;
    println!("    {functions} functions in {} objects: {}", objects.len(), audit.summary);
    step.done();
    Ok(audit)
}

/// The first `n` instructions of `symbol` in `image`, as
/// `llvm-objdump-14` names them (whitespace folded to one space).
fn entry_instructions(image: &Path, options: &[&str], symbol: &str, n: usize) -> Result<Vec<String>> {
    let mut objdump = Command::new("llvm-objdump-14");
    objdump.args(["-d", "--no-show-raw-insn"]).arg(format!("--disassemble-symbols={symbol}")).args(options);
    let text = cmd::output(objdump.arg(image))?;
    Ok(parse_instructions(&text).into_iter().take(n).collect())
}

/// `ADDRESS: <tab>MNEMONIC<tab>OPERANDS` lines of `llvm-objdump -d`.
pub fn parse_instructions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(":"))
        .filter(|(address, _)| !address.trim().is_empty() && address.trim().chars().all(|c| c.is_ascii_hexdigit()))
        .map(|(_, insn)| insn.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|insn| !insn.is_empty())
        .collect()
}

/// (object, function, records) from `pfe-check --list`: each object's
/// summary line (`PATH (KIND ARCH): ...`), then one line per function,
/// `  ADDRESS N before N after N records PAD site ALIGN NAME`.
fn listed_functions(text: &str) -> Vec<(String, String, usize)> {
    let mut object = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            if let Some((path, _)) = line.split_once(" (") {
                object = path.to_string();
            }
            continue;
        }
        // The landing pad may be two words (`bti c`): the name is the last
        // word, the record count the one before `records`.
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "records") else { continue };
        if words.len() >= 11 && words[0].starts_with("0x") && at == 6 {
            if let (Ok(records), Some(name)) = (words[5].parse(), words.last()) {
                out.push((object.clone(), name.to_string(), records));
            }
        }
    }
    out
}

/// (objects, functions) from pfe-check's summary lines, one per object:
/// `PATH (KIND ARCH): N functions, ...`.
fn summary_counts(text: &str) -> Result<(usize, usize)> {
    let mut objects = 0;
    let mut functions = 0;
    for line in text.lines().filter(|l| !l.starts_with(' ')) {
        let Some(rest) = line.rsplit_once("): ").map(|(_, r)| r) else { continue };
        let Some(n) = rest.split_once(" functions, ").map(|(n, _)| n) else { continue };
        functions += n.trim().parse::<usize>().with_context(|| format!("pfe-check said `{line}`"))?;
        objects += 1;
    }
    Ok((objects, functions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_summary_lines() {
        let text = "rust/core.o (relocatable X86_64): 2051 functions, 2051 with a record; 2051 records in 1 sections (flags awo), 0 orphans\n  \
                    --expect 16,16: 2051/2051 functions match\n\
                    samples/rust/rust_minimal.o (relocatable x86_64): 4 functions, 4 with a record; 4 records in 1 sections (flags awo), 0 orphans\n  \
                    --expect 16,16: 4/4 functions match\n";
        assert_eq!(summary_counts(text).unwrap(), (2, 2055));
        assert_eq!(summary_counts("  offender: f: 0 before\n").unwrap(), (0, 0));
    }

    #[test]
    fn listed_functions_carry_their_object_and_records() {
        let text = "/b/samples/rust/rust_ftrace_target.o (relocatable aarch64): 3 functions, 2 with a record; 2 records in 1 sections (flags awo), 0 orphans\n  \
                    0x00000000   0 before   2 after  1 records -       site     4-al rust_ftrace_target\n  \
                    0x00000010   0 before   0 after  0 records bti c   site     4-al rust_ftrace_notrace\n  \
                    --expect 2,0: 2/2 functions match (1 skipped)\n";
        let listed = listed_functions(text);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0], ("/b/samples/rust/rust_ftrace_target.o".to_string(), "rust_ftrace_target".to_string(), 1));
        assert_eq!(listed[1], ("/b/samples/rust/rust_ftrace_target.o".to_string(), "rust_ftrace_notrace".to_string(), 0));
    }
}
