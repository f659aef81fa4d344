//! pfe-check on what real compilers emit: the objects and executables that
//! `tests/objects/make.sh` made with clang-14, llc-14, gcc,
//! aarch64-linux-gnu-gcc and ld.lld-14 (shipped, so these tests run without them), the same made afresh
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

/// The shipped big-endian aarch64 files: ELF64 relocatable (clang, GCC),
/// ELF32 ILP32 relocatable (llc), and ELF64 static and PIE executables.
const AARCH64_BE: [(&str, Arch, &str); 5] = [
    ("clang-aarch64_be-3-1.o", Arch::Aarch64, "relocatable"),
    ("gcc-aarch64_be-3-1.o", Arch::Aarch64, "relocatable"),
    ("llc-aarch64_be-ilp32-3-1.o", Arch::Aarch64Ilp32, "relocatable"),
    ("lld-aarch64_be-3-1-static", Arch::Aarch64, "executable"),
    ("lld-aarch64_be-3-1-pie", Arch::Aarch64, "shared object"),
];

#[test]
fn aarch64_be_files_are_read_in_their_byte_order() {
    for (file, arch, kind) in AARCH64_BE {
        let data = std::fs::read(objects().join(file)).unwrap();
        let r = analyze(file, &data).unwrap().remove(0);
        assert_eq!((r.arch, r.big_endian, r.kind.as_str()), (arch, true, kind), "{file}");
        // -fpatchable-function-entry=3,1: each record (a big-endian pointer,
        // relocation or RELATIVE addend) points one nop before its symbol,
        // and the nops are little-endian `1f 20 03 d5`s as everywhere.
        assert!(r.functions.len() >= 5, "{file}: {:?}", r.functions);
        for f in &r.functions {
            assert_eq!((f.records, f.record_offset, f.prefix_nops, f.entry_nops), (1, Some(-4), 1, 2), "{file}: {f:?}");
            assert!(f.pad.starts_with("1f2003d51f2003d51f2003d5"), "{file}: {f:?}");
        }
    }
}

/// `file` with the first nop after `function`'s symbol replaced by `insn`.
fn with_entry_nop_replaced(file: &str, function: &str, insn: [u8; 4]) -> Vec<u8> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let mut data = std::fs::read(objects().join(file)).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let symbol = file.symbols().find(|s| s.name() == Ok(function)).unwrap();
    let section = file.section_by_index(symbol.section_index().unwrap()).unwrap();
    let at = (section.file_range().unwrap().0 + symbol.address() - section.address()) as usize;
    drop(file);
    assert_eq!(data[at..at + 4], [0x1f, 0x20, 0x03, 0xd5], "{function} starts with a nop");
    data[at..at + 4].copy_from_slice(&insn);
    data
}

#[test]
fn aarch64_be_files_with_a_wrong_pad_are_reported() {
    for (file, _, _) in AARCH64_BE {
        // The nop in the data's byte order (as if aarch64_be instructions
        // were big-endian): `d5 03 20 1f` is no nop.
        let data = with_entry_nop_replaced(file, "leaf", [0xd5, 0x03, 0x20, 0x1f]);
        let r = analyze(file, &data).unwrap().remove(0);
        let wrong = r.offenders(Expect { total: 3, prefix: 1 }, &[]);
        assert_eq!(wrong.len(), 1, "{file}: {wrong:?}");
        assert_eq!(wrong[0].0, "leaf", "{file}");
        assert!(wrong[0].1.iter().any(|w| w.contains("0 nops after the symbol, want 2")), "{file}: {wrong:?}");
    }
    // And through the command line: exit 1, naming the function.
    let path = std::env::temp_dir().join(format!("pfe-check-be-wrong-{}.o", std::process::id()));
    std::fs::write(&path, with_entry_nop_replaced("clang-aarch64_be-3-1.o", "sum", [0xd5, 0x03, 0x20, 0x1f])).unwrap();
    let (code, text) = pfe_check(&["--expect", "3,1", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("offender: sum: 0 nops after the symbol, want 2"), "{text}");
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
    assert!(json.1.contains("\"big_endian\": false"), "{}", json.1);
    let be = pfe_check(&[
        "--expect",
        "3,1",
        "--align",
        "4",
        "clang-aarch64_be-3-1.o",
        "llc-aarch64_be-ilp32-3-1.o",
        "lld-aarch64_be-3-1-static",
    ]);
    assert_eq!(be.0, 0, "{}", be.1);
    assert!(be.1.contains("clang-aarch64_be-3-1.o (relocatable aarch64 big-endian): 5 functions, 5 with a record"), "{}", be.1);
    assert!(be.1.contains("llc-aarch64_be-ilp32-3-1.o (relocatable aarch64_ilp32 big-endian)"), "{}", be.1);
    let be_wrong = pfe_check(&["--expect", "3", "lld-aarch64_be-3-1-pie"]);
    assert_eq!(be_wrong.0, 1, "{}", be_wrong.1);
    assert!(be_wrong.1.contains("offender: leaf: 1 nops before the symbol, want 0"), "{}", be_wrong.1);
    let be_json = pfe_check(&["--json", "llc-aarch64_be-ilp32-3-1.o"]);
    assert!(be_json.1.contains("\"arch\": \"aarch64_ilp32\",\n    \"big_endian\": true"), "{}", be_json.1);
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
    let mentions =
        ["--expect", "--align", "--skip", "--list", "--json", "c.nop", "0x90", "riscv32", "x32", "aarch64_be", "big-endian", "Exit status"];
    for what in mentions {
        assert!(help.contains(what), "--help does not mention {what}");
    }
}
