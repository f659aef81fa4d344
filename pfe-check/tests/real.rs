//! pfe-check on what real compilers emit: the objects and executables that
//! `tests/objects/make.sh` made with clang-14, gcc, aarch64-linux-gnu-gcc and
//! ld.lld-14 (shipped, so these tests run without them), the same made afresh
//! by the compilers on this machine where they exist, and the command line's
//! exit codes on them.

use pfe_check::{analyze, Arch, Expect, Report};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::io::Write;
use std::process::Command;

fn objects() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/objects")
}

/// One line of a MANIFEST: what the compile flags promise of one file.
struct Promise {
    file: String,
    expect: Expect,
    align: Option<u64>,
    misaligned: Option<u64>,
    skip: Vec<String>,
}

fn manifest(dir: &Path) -> Vec<Promise> {
    let text = std::fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST (run tests/objects/make.sh)");
    let number = |s: &str| (s != "-").then(|| s.parse::<u64>().unwrap());
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            Promise {
                file: words[0].to_string(),
                expect: words[1].parse().unwrap(),
                align: number(words[2]),
                misaligned: number(words[3]),
                skip: words[4..].iter().map(|s| s.to_string()).collect(),
            }
        })
        .collect()
}

/// Checks every promise of `dir`'s MANIFEST; returns the architectures seen
/// and whether compressed RISC-V nops (`c.nop`, `0100`) were among the pads.
fn check(dir: &Path) -> (BTreeSet<&'static str>, bool) {
    let mut arches = BTreeSet::new();
    let mut c_nop = false;
    let promises = manifest(dir);
    assert!(promises.len() >= 20, "{} promises in {}", promises.len(), dir.display());
    for p in &promises {
        let path = dir.join(&p.file);
        let data = std::fs::read(&path).unwrap();
        let reports: Vec<Report> = analyze(&p.file, &data).unwrap_or_else(|e| panic!("{}: {e:#}", p.file));
        for r in &reports {
            arches.insert(r.arch.name());
            let functions = r.functions.iter().filter(|f| !p.skip.iter().any(|s| f.name.contains(s))).count();
            assert!(functions >= 5, "{}: {functions} functions", p.file);
            assert!(r.orphans.is_empty() && r.problems.is_empty(), "{}: {:?} {:?}", p.file, r.orphans, r.problems);
            let offenders = r.offenders(p.expect, &p.skip);
            assert!(offenders.is_empty(), "{}: not padded as {:?}: {offenders:?}", p.file, p.expect);
            if let Some(align) = p.align {
                let (checked, misaligned) = r.misaligned(align, &p.skip);
                assert_eq!(checked, functions, "{}", p.file);
                assert!(misaligned.is_empty(), "{}: {misaligned:?}", p.file);
            }
            if let Some(align) = p.misaligned {
                let (checked, misaligned) = r.misaligned(align, &p.skip);
                assert!(!misaligned.is_empty(), "{}: all {checked} sites {align}-aligned without -falign-functions", p.file);
                println!("{}: {}/{checked} patch sites {align}-aligned without -falign-functions", p.file, checked - misaligned.len());
            }
            if matches!(r.arch, Arch::Riscv32 | Arch::Riscv64) {
                c_nop |= r.functions.iter().any(|f| f.pad.starts_with("0100"));
            }
        }
    }
    println!("{}: {} files keep their promises", dir.display(), promises.len());
    (arches, c_nop)
}

#[test]
fn shipped_objects_keep_the_promises_of_their_flags() {
    let (arches, c_nop) = check(&objects());
    let all: BTreeSet<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(arches, all, "every padded architecture is covered");
    assert!(c_nop, "2-byte c.nop pads are covered");
}

#[test]
fn fresh_objects_from_this_machines_compilers_keep_them_too() {
    if Command::new("clang-14").arg("--version").output().is_err() {
        // Past the harness's capture, so the reason shows.
        let _ = writeln!(std::io::stderr(), "skipped: no clang-14 on this machine (the shipped objects were checked)");
        return;
    }
    let out = std::env::temp_dir().join(format!("pfe-check-objects-{}", std::process::id()));
    let status = Command::new("sh").arg(objects().join("make.sh")).arg(&out).status().expect("sh");
    assert!(status.success(), "make.sh failed");
    check(&out);
    let promises = manifest(&out);
    let same = promises
        .iter()
        .filter(|p| std::fs::read(out.join(&p.file)).ok() == std::fs::read(objects().join(&p.file)).ok())
        .count();
    let _ = writeln!(
        std::io::stderr(),
        "real compilers: {} files made by make.sh keep their promises, {same} byte-identical to the shipped ones",
        promises.len()
    );
    let _ = std::fs::remove_dir_all(&out);
}

fn pfe_check(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pfe-check")).args(args).current_dir(objects()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn command_line_exit_codes() {
    let ok = pfe_check(&["--expect", "16,16", "--align", "16", "clang-x86_64-16-16-a16.o", "lld-i686-16-16-a16-pie"]);
    assert_eq!(ok.0, 0, "{}", ok.1);
    assert!(ok.1.contains("--align 16: 5/5 patch sites 16-aligned"), "{}", ok.1);
    // The kernel's x86 shape at -Os without -falign-functions.
    let misaligned = pfe_check(&["--expect=16,16", "--align=16", "clang-x86_64-16-16-Os.o"]);
    assert_eq!(misaligned.0, 1, "{}", misaligned.1);
    assert!(misaligned.1.contains("misaligned: leaf: patch site .text+0x0"), "{}", misaligned.1);
    let wrong = pfe_check(&["--expect", "4", "clang-riscv64c-4-2.o"]);
    assert_eq!(wrong.0, 1, "{}", wrong.1);
    assert!(wrong.1.contains("offender: leaf: 2 nops before the symbol, want 0"), "{}", wrong.1);
    let skipped = pfe_check(&["--expect", "5,3", "--skip", "get_pc_thunk", "gcc-i686-5-3.o"]);
    assert_eq!(skipped.0, 0, "{}", skipped.1);
    let json = pfe_check(&["--json", "clang-aarch64-2-bti.o"]);
    assert_eq!(json.0, 0, "{}", json.1);
    assert!(json.1.contains("\"arch\": \"aarch64\"") && json.1.contains("\"landing_pad\": \"bti c\""), "{}", json.1);
    for (args, message) in [
        (&["make.sh"][..], "not an ELF file"),
        (&["--align", "3", "clang-i686-5-3.o"], "not a power of two"),
        (&["--expect", "2,4", "clang-i686-5-3.o"], "larger than the total"),
        (&["--frobnicate", "clang-i686-5-3.o"], "unknown option"),
        (&["--list"], "no files"),
        (&["missing.o"], "cannot read"),
    ] {
        let (code, text) = pfe_check(args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
    }
    let (code, help) = pfe_check(&["--help"]);
    assert_eq!(code, 0);
    for what in ["--expect", "--align", "--skip", "--list", "--json", "c.nop", "0x90", "riscv32", "x32", "Exit status"] {
        assert!(help.contains(what), "--help does not mention {what}");
    }
}
