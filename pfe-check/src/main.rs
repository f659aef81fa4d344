//! `pfe-check`: are the functions of these ELF files padded and recorded as
//! the kernel expects? See `pfe-check --help`.

use anyhow::{Context, Result};
use clap::Parser;
use pfe_check::{analyze, Expect, Report};
use std::process::ExitCode;

/// Audit patchable function entries in ELF objects, archives and executables.
///
/// For every defined function (x86_64 and aarch64) it reports the nops before
/// the symbol, the nops after it (after an `endbr64` or `bti` landing pad),
/// and how many records in `__patchable_function_entries` point at the pad's
/// start; records that point at no function are reported as orphans. Nops are
/// counted as `-fpatchable-function-entry` counts them: bytes on x86,
/// instructions on aarch64.
///
/// Exit status: 0 when everything matches (or nothing was expected), 1 when a
/// function or record does not match `--expect` or a record is an orphan, 2
/// when a file cannot be read.
#[derive(Parser)]
#[command(name = "pfe-check", version, after_help = EXAMPLES)]
struct Cli {
    /// ELF relocatable objects, archives (.a, .rlib) or executables.
    #[arg(required = true)]
    files: Vec<String>,
    /// Check that every function has N nops in total, M of them before the
    /// symbol, and exactly one record (none when N is 0).
    #[arg(long, value_name = "N[,M]")]
    expect: Option<Expect>,
    /// Leave out functions whose name contains this (repeatable); they are
    /// listed as skipped.
    #[arg(long, value_name = "NAME")]
    skip: Vec<String>,
    /// Print every function, not only the summary.
    #[arg(long)]
    list: bool,
    /// Print the full report as JSON.
    #[arg(long)]
    json: bool,
}

const EXAMPLES: &str = "Examples:
  pfe-check --expect 16,16 foo.o            every function: 16 nops before, 0 after, 1 record
  pfe-check --expect 2 libfoo.rlib          aarch64 ftrace: 2 nops after the symbol
  pfe-check --expect 0 notrace.o            no nops, no records
  pfe-check --json vmlinux.o > report.json";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("pfe-check: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let cli = Cli::parse();
    let mut reports = Vec::new();
    for path in &cli.files {
        let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        reports.extend(analyze(path, &data)?);
    }
    let mut ok = true;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    for report in &reports {
        ok &= print_report(report, &cli);
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
            "{} ({} {:?}): {} functions, {padded} with a record; {records} records in {} sections (flags {}), {} orphans",
            report.path,
            report.kind,
            report.arch,
            report.functions.len(),
            report.record_sections.len(),
            if flags.is_empty() { "-".to_string() } else { flags.join(",") },
            report.orphans.len(),
        );
    }
    if cli.list && !quiet {
        for f in &report.functions {
            println!(
                "  {:#010x} {:>3} before {:>3} after {:>2} records {:<7} {}",
                f.address,
                f.prefix_nops,
                f.entry_nops,
                f.records,
                f.landing_pad.unwrap_or("-"),
                f.name
            );
        }
    }
    let mut ok = report.orphans.is_empty() && report.problems.is_empty();
    if !quiet {
        for problem in &report.problems {
            println!("  problem: {problem}");
        }
        for orphan in &report.orphans {
            println!("  orphan record in {}: points at {}", orphan.record_section, orphan.points_at);
        }
    }
    if let Some(expect) = cli.expect {
        let skipped: Vec<&str> = report
            .functions
            .iter()
            .filter(|f| cli.skip.iter().any(|s| f.name.contains(s.as_str())))
            .map(|f| f.name.as_str())
            .collect();
        let offenders = report.offenders(expect, &cli.skip);
        let checked = report.functions.len() - skipped.len();
        if !quiet {
            println!(
                "  --expect {},{}: {}/{checked} functions match{}",
                expect.total,
                expect.prefix,
                checked - offenders.len(),
                if skipped.is_empty() { String::new() } else { format!(", {} skipped", skipped.len()) }
            );
            for name in &skipped {
                println!("  skipped: {name}");
            }
            for (name, wrong) in &offenders {
                println!("  offender: {name}: {}", wrong.join("; "));
            }
        }
        ok &= offenders.is_empty();
    }
    ok
}
