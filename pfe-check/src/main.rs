//! `pfe-check`: are the functions of these ELF files padded, recorded and
//! aligned as the kernel expects? See `pfe-check --help`.

use anyhow::{bail, Context, Result};
use pfe_check::{analyze, parse_align, to_json, Expect, Report};
use std::process::ExitCode;

const HELP: &str = "\
pfe-check: audit patchable function entries in ELF objects, archives and executables

Usage: pfe-check [OPTIONS] <FILES>...

Reads ELF relocatable objects, archives (.a, .rlib) and executables of every
target the rustc-pfe series pads: i686, x32, x86_64, aarch64 (and ILP32),
riscv32 and riscv64, ELF32 and ELF64, little-endian, and big-endian aarch64_be
(ELF64, and ELF32 for ILP32), whose records and relocations are read in the
file's byte order (its instructions are little-endian: nop is 1f 20 03 d5 in
memory either way). For every defined function it finds:
  - the nops after the symbol, after an `endbr64`/`endbr32` or `bti` landing
    pad: bytes on x86 (multi-byte nops count), instructions elsewhere (on
    RISC-V, 2-byte `c.nop` and 4-byte `nop` count one each);
  - the nops before the symbol, from where its record points: on x86 only
    single-byte 0x90s count, as the kernel's call padding requires (multi-byte
    nops there are reported as a problem);
  - how many records in `__patchable_function_entries` point at its pad's
    start, and how that patch site is aligned.
Records are relocations in relocatable objects (R_X86_64_64, R_X86_64_32 on
x32, R_386_32, R_AARCH64_ABS64, R_AARCH64_P32_ABS32 on ILP32, R_RISCV_64,
R_RISCV_32) and pointers (or RELATIVE dynamic relocations) in executables. Records that point at no
function's pad are orphans; record sections must have flags `awo` in
relocatable objects and a relocation of the right type in every slot.
Whether an instruction is a nop or a landing pad is decided by LLVM 14's own
disassembler (Debian's libLLVM-14), the same for every target.

Options:
      --expect <N[,M]>  Check that every function has N nops in total, M of them
                        before the symbol, and exactly one record (none when N
                        is 0)
      --align <N>       Check that every patch site (where a record points) is
                        N-aligned (N a power of two); in relocatable objects the
                        site's section alignment bounds it
      --skip <NAME>     Leave out functions whose name contains NAME
                        (repeatable); they are listed as skipped
      --list            Print every function, not only the summary
      --json            Print the full report as JSON
  -h, --help            Print help
  -V, --version         Print version

Exit status: 0 when everything matches (or nothing was expected), 1 when a
function does not match --expect, a patch site is not --align aligned, a record
is an orphan or a problem is found, 2 when a file cannot be read (not ELF,
truncated, big-endian but not aarch64, another architecture) or the command
line is wrong.

Examples:
  pfe-check --expect 16,16 --align 16 foo.o     x86 call padding: 16 x 0x90 before, 0 after, 16-aligned
  pfe-check --expect 4,2 --align 8 libfoo.rlib  arm64 ftrace with call ops
  pfe-check --expect 2 libfoo.rlib              arm64 ftrace: 2 nops after the symbol
  pfe-check --expect 0 notrace.o                no nops, no records
  pfe-check --json vmlinux.o > report.json
";

struct Cli {
    files: Vec<String>,
    expect: Option<Expect>,
    align: Option<u64>,
    skip: Vec<String>,
    list: bool,
    json: bool,
}

enum Parsed {
    Run(Cli),
    Print(String),
}

/// The command line: the same options and values the clap-derived one of
/// earlier versions took.
fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed> {
    let mut cli = Cli { files: Vec::new(), expect: None, align: None, skip: Vec::new(), list: false, json: false };
    let mut args = args.into_iter();
    let mut options = true;
    while let Some(arg) = args.next() {
        if !options || !arg.starts_with('-') || arg == "-" {
            cli.files.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => bail!("{name} needs a value: {what}"),
            }
        };
        match name.as_str() {
            "--" => options = false,
            "-h" | "--help" => return Ok(Parsed::Print(HELP.to_string())),
            "-V" | "--version" => return Ok(Parsed::Print(format!("pfe-check {}\n", env!("CARGO_PKG_VERSION")))),
            "--expect" => {
                let v = value("N[,M]")?;
                cli.expect = Some(v.parse().map_err(|e: String| anyhow::anyhow!("--expect {v}: {e}"))?);
            }
            "--align" => {
                let v = value("N")?;
                cli.align = Some(parse_align(&v).map_err(|e| anyhow::anyhow!("--align {v}: {e}"))?);
            }
            "--skip" => cli.skip.push(value("NAME")?),
            "--list" | "--json" if inline.is_some() => bail!("{name} takes no value"),
            "--list" => cli.list = true,
            "--json" => cli.json = true,
            other => bail!("unknown option `{other}` (see --help)"),
        }
    }
    if cli.files.is_empty() {
        bail!("no files given (see --help)");
    }
    Ok(Parsed::Run(cli))
}

/// Rust ignores SIGPIPE, so `pfe-check ... | head` used to panic ("failed
/// printing to stdout: Broken pipe") once `head` had read enough. Like the
/// C tools it is used next to, pfe-check now just stops there.
#[cfg(unix)]
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default action of one signal before any thread
    // starts; no handler runs Rust code.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("pfe-check: error: {err:#}");
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("pfe-check: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<bool> {
    let mut reports = Vec::new();
    for path in &cli.files {
        let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        reports.extend(analyze(path, &data)?);
    }
    let mut ok = true;
    if cli.json {
        println!("{}", to_json(&reports));
    }
    for report in &reports {
        ok &= print_report(report, cli);
    }
    Ok(ok)
}

/// Prints one object's summary (and offenders); false if it fails the check.
fn print_report(report: &Report, cli: &Cli) -> bool {
    let quiet = cli.json;
    let records: usize = report.record_sections.iter().map(|s| s.records).sum();
    let padded = report.functions.iter().filter(|f| f.records > 0).count();
    let mut flags: Vec<&str> = report.record_sections.iter().map(|s| s.flags.as_str()).collect();
    flags.sort();
    flags.dedup();
    if !quiet {
        println!(
            "{} ({} {}{}): {} functions, {padded} with a record; {records} records in {} sections (flags {}), {} orphans",
            report.path,
            report.kind,
            report.arch.name(),
            if report.big_endian { " big-endian" } else { "" },
            report.functions.len(),
            report.record_sections.len(),
            if flags.is_empty() { "-".to_string() } else { flags.join(",") },
            report.orphans.len(),
        );
    }
    if cli.list && !quiet {
        for f in &report.functions {
            println!(
                "  {:#010x} {:>3} before {:>3} after {:>2} records {:<7} site {:>5} {}",
                f.address,
                f.prefix_nops,
                f.entry_nops,
                f.records,
                f.landing_pad.unwrap_or("-"),
                f.site_alignment.map_or("-".to_string(), |a| format!("{}-al", a.min(1 << 12))),
                f.name
            );
        }
    }
    let function_problems = report.functions.iter().any(|f| !f.problems.is_empty() && !skipped(&f.name, &cli.skip));
    let mut ok = report.orphans.is_empty() && report.problems.is_empty() && !function_problems;
    if !quiet {
        for problem in &report.problems {
            println!("  problem: {problem}");
        }
        for orphan in &report.orphans {
            println!("  orphan record in {}: points at {}", orphan.record_section, orphan.points_at);
        }
        if cli.expect.is_none() {
            // With --expect they are listed among the offenders.
            for f in report.functions.iter().filter(|f| !skipped(&f.name, &cli.skip)) {
                for problem in &f.problems {
                    println!("  problem: {}: {problem}", f.name);
                }
            }
        }
    }
    let skipped_names: Vec<&str> =
        report.functions.iter().filter(|f| skipped(&f.name, &cli.skip)).map(|f| f.name.as_str()).collect();
    if let Some(expect) = cli.expect {
        let offenders = report.offenders(expect, &cli.skip);
        let checked = report.functions.len() - skipped_names.len();
        if !quiet {
            println!(
                "  --expect {},{}: {}/{checked} functions match{}",
                expect.total,
                expect.prefix,
                checked - offenders.len(),
                if skipped_names.is_empty() { String::new() } else { format!(", {} skipped", skipped_names.len()) }
            );
            for name in &skipped_names {
                println!("  skipped: {name}");
            }
            for (name, wrong) in &offenders {
                println!("  offender: {name}: {}", wrong.join("; "));
            }
        }
        ok &= offenders.is_empty();
    }
    if let Some(align) = cli.align {
        let (checked, misaligned) = report.misaligned(align, &cli.skip);
        if !quiet {
            println!("  --align {align}: {}/{checked} patch sites {align}-aligned", checked - misaligned.len());
            for (name, what) in &misaligned {
                println!("  misaligned: {name}: {what}");
            }
        }
        ok &= misaligned.is_empty();
    }
    ok
}

fn skipped(name: &str, skip: &[String]) -> bool {
    skip.iter().any(|s| name.contains(s.as_str()))
}
