//! pfe-check on synthetic ELF objects whose bytes, symbols and records are
//! known exactly (the end-to-end tests run it on what rustc and clang emit).

use super::*;
use object::write::{Object as Writer, Relocation, Symbol, SymbolSection as WSection};
use object::{Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope};
#[path = "../tests/support/mod.rs"]
mod support;
use support::archive;

const AARCH64_NOP: u32 = 0xd503_201f;
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

struct Func<'a> {
    name: &'a str,
    /// Bytes before the symbol, then the function's bytes.
    before: &'a [u8],
    body: &'a [u8],
    /// Where the record points, relative to the symbol (None: no record).
    record: Option<i64>,
}

fn object(arch: Architecture, funcs: &[Func<'_>], record_flags: u64) -> Vec<u8> {
    object_in(arch, Endianness::Little, funcs, record_flags)
}

/// An object in `endian` byte order: its records and relocations follow it,
/// the instruction bytes in `Func` are written as given.
fn object_in(arch: Architecture, endian: Endianness, funcs: &[Func<'_>], record_flags: u64) -> Vec<u8> {
    let mut obj = Writer::new(BinaryFormat::Elf, arch, endian);
    let (r_type, slot) = match arch {
        Architecture::X86_64 => (elf::R_X86_64_64, 8),
        Architecture::Aarch64 => (elf::R_AARCH64_ABS64, 8),
        Architecture::Aarch64_Ilp32 => (elf::R_AARCH64_P32_ABS32, 4),
        other => panic!("no record relocation for {other:?}"),
    };
    for f in funcs {
        let text = obj.add_section(vec![], format!(".text.{}", f.name).into_bytes(), SectionKind::Text);
        let mut bytes = f.before.to_vec();
        bytes.extend_from_slice(f.body);
        obj.append_section_data(text, &bytes, 16);
        obj.add_symbol(Symbol {
            name: f.name.as_bytes().to_vec(),
            value: f.before.len() as u64,
            size: f.body.len() as u64,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section: WSection::Section(text),
            flags: SymbolFlags::None,
        });
        if let Some(at) = f.record {
            let records = obj.add_section(vec![], RECORD_SECTION.as_bytes().to_vec(), SectionKind::Data);
            obj.section_mut(records).flags = object::SectionFlags::Elf { sh_flags: record_flags };
            obj.append_section_data(records, &vec![0; slot], slot as u64);
            let symbol = obj.section_symbol(text);
            obj.add_relocation(
                records,
                Relocation {
                    offset: 0,
                    symbol,
                    addend: f.before.len() as i64 + at,
                    flags: object::RelocationFlags::Elf { r_type },
                },
            )
            .unwrap();
        }
    }
    obj.write().unwrap()
}

const AWO: u64 = (elf::SHF_ALLOC | elf::SHF_WRITE | elf::SHF_LINK_ORDER) as u64;
const NOP3: [u8; 3] = [0x0f, 0x1f, 0x00];
const RET: [u8; 1] = [0xc3];

fn x86(funcs: &[Func<'_>]) -> Report {
    let bytes = object(Architecture::X86_64, funcs, AWO);
    analyze("t.o", &bytes).unwrap().remove(0)
}

#[test]
fn x86_prefix_and_multibyte_entry_nops_with_a_record() {
    let body = [NOP3.as_slice(), &RET].concat();
    let r = x86(&[Func { name: "f", before: &[0x90, 0x90], body: &body, record: Some(-2) }]);
    assert_eq!(r.functions.len(), 1);
    let f = &r.functions[0];
    assert_eq!((f.prefix_nops, f.entry_nops, f.records), (2, 3, 1));
    assert_eq!((f.pad.as_str(), f.record_offset), ("90900f1f00", Some(-2)));
    assert!(r.orphans.is_empty() && r.problems.is_empty(), "{r:?}");
    assert_eq!(r.record_sections[0].flags, "awo");
    assert!(r.offenders(Expect { total: 5, prefix: 2 }, &[]).is_empty());
    let wrong = r.offenders(Expect { total: 5, prefix: 0 }, &[]);
    assert_eq!(wrong.len(), 1);
    assert!(wrong[0].1.iter().any(|w| w.contains("2 nops before the symbol, want 0")), "{wrong:?}");
}

#[test]
fn a_function_without_a_record_is_an_offender() {
    let r = x86(&[
        Func { name: "padded", before: &[0x90], body: &[0x90, 0xc3], record: Some(-1) },
        Func { name: "forgotten", before: &[0x90], body: &[0x90, 0xc3], record: None },
    ]);
    let wrong = r.offenders(Expect { total: 2, prefix: 1 }, &[]);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert_eq!(wrong[0].0, "forgotten");
    assert!(wrong[0].1.iter().any(|w| w.contains("0 records")));
    // --skip leaves it out.
    assert!(r.offenders(Expect { total: 2, prefix: 1 }, &["forgot".to_string()]).is_empty());
}

#[test]
fn a_record_pointing_at_code_is_an_orphan() {
    // The record points 1 byte into the function: not a pad start.
    let r = x86(&[Func { name: "f", before: &[], body: &[0x55, 0x48, 0x89, 0xe5, 0xc3], record: Some(1) }]);
    assert_eq!(r.orphans.len(), 1, "{r:?}");
    assert_eq!(r.functions[0].records, 0);
    // A record before the symbol over bytes that are not nops is not ours.
    let r = x86(&[Func { name: "g", before: &[0xcc, 0xcc], body: &[0xc3], record: Some(-2) }]);
    assert_eq!(r.orphans.len(), 1, "{r:?}");
}

#[test]
fn record_section_flags_are_checked() {
    let bytes = object(
        Architecture::X86_64,
        &[Func { name: "f", before: &[], body: &[0x90, 0xc3], record: Some(0) }],
        (elf::SHF_ALLOC | elf::SHF_WRITE) as u64,
    );
    let r = analyze("t.o", &bytes).unwrap().remove(0);
    assert_eq!(r.functions[0].records, 1);
    assert!(r.problems.iter().any(|p| p.contains("flags `aw`, not `awo`")), "{:?}", r.problems);
}

#[test]
fn x86_endbr64_comes_first_and_the_record_points_after_it() {
    let body = [ENDBR64.as_slice(), &[0x66, 0x90], &RET].concat();
    let r = x86(&[Func { name: "f", before: &[], body: &body, record: Some(4) }]);
    let f = &r.functions[0];
    assert_eq!((f.landing_pad, f.prefix_nops, f.entry_nops, f.records), (Some("endbr64"), 0, 2, 1));
    // Pointing at the endbr64 itself is reported.
    let r = x86(&[Func { name: "f", before: &[], body: &body, record: Some(0) }]);
    assert!(r.functions[0].problems.iter().any(|p| p.contains("landing pad")), "{r:?}");
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn aarch64_bti_then_entry_nops() {
    let before = words(&[AARCH64_NOP, AARCH64_NOP]);
    let body = words(&[0xd503_245f, AARCH64_NOP, AARCH64_NOP, 0xd65f_03c0]);
    let bytes = object(Architecture::Aarch64, &[Func { name: "f", before: &before, body: &body, record: Some(-8) }], AWO);
    let r = analyze("t.o", &bytes).unwrap().remove(0);
    assert_eq!(r.arch, Arch::Aarch64);
    let f = &r.functions[0];
    assert_eq!((f.landing_pad, f.prefix_nops, f.entry_nops, f.records), (Some("bti c"), 2, 2, 1));
    assert_eq!(f.pad, "1f2003d51f2003d55f2403d51f2003d51f2003d5");
    assert!(r.offenders(Expect { total: 4, prefix: 2 }, &[]).is_empty());
}

/// The aarch64 shape of `aarch64_bti_then_entry_nops` (2 nops, `bti c`, 2
/// nops, the record at the first) in `arch` and `endian`, `nop` written as
/// `nop_bytes`.
fn aarch64_object(arch: Architecture, endian: Endianness, nop_bytes: [u8; 4]) -> Report {
    let before = [nop_bytes, nop_bytes].concat();
    let body = [words(&[0xd503_245f]).as_slice(), &nop_bytes, &nop_bytes, &words(&[0xd65f_03c0])].concat();
    let bytes = object_in(arch, endian, &[Func { name: "f", before: &before, body: &body, record: Some(-8) }], AWO);
    analyze("t.o", &bytes).unwrap().remove(0)
}

#[test]
fn aarch64_be_is_read_in_its_byte_order_with_little_endian_instructions() {
    // AArch64 instructions are little-endian in memory on aarch64_be too:
    // `nop` is 1f 20 03 d5 there as well (tests/objects/ has real ones).
    for (arch, want) in [(Architecture::Aarch64, Arch::Aarch64), (Architecture::Aarch64_Ilp32, Arch::Aarch64Ilp32)] {
        for endian in [Endianness::Little, Endianness::Big] {
            let r = aarch64_object(arch, endian, AARCH64_NOP.to_le_bytes());
            assert_eq!((r.arch, r.big_endian), (want, endian == Endianness::Big));
            assert!(r.orphans.is_empty() && r.problems.is_empty(), "{arch:?} {endian:?}: {r:?}");
            let f = &r.functions[0];
            assert_eq!((f.landing_pad, f.prefix_nops, f.entry_nops, f.records), (Some("bti c"), 2, 2, 1), "{arch:?} {endian:?}");
            assert_eq!(f.record_offset, Some(-8), "{arch:?} {endian:?}");
            assert_eq!(f.pad, "1f2003d51f2003d55f2403d51f2003d51f2003d5");
            assert!(r.offenders(Expect { total: 4, prefix: 2 }, &[]).is_empty(), "{arch:?} {endian:?}");
        }
    }
}

#[test]
fn aarch64_be_with_a_wrong_pad_is_reported() {
    // The pad's nops written in the data's byte order (d5 03 20 1f), as a
    // tool that took aarch64_be instructions for big-endian would: not nops.
    for arch in [Architecture::Aarch64, Architecture::Aarch64_Ilp32] {
        let r = aarch64_object(arch, Endianness::Big, AARCH64_NOP.to_be_bytes());
        assert!(r.big_endian);
        let f = &r.functions[0];
        assert_eq!((f.prefix_nops, f.entry_nops), (0, 0), "{arch:?}: {f:?}");
        let wrong = r.offenders(Expect { total: 4, prefix: 2 }, &[]);
        assert_eq!(wrong.len(), 1, "{arch:?}: {wrong:?}");
        assert!(wrong[0].1.iter().any(|w| w.contains("0 nops after the symbol, want 2")), "{arch:?}: {wrong:?}");
        // The record points over bytes that are not nops: not this function's.
        assert_eq!(r.orphans.len(), 1, "{arch:?}: {r:?}");
    }
}

#[test]
fn record_slots_are_read_in_the_files_byte_order() {
    let slot = [0, 0, 0, 0, 0, 0x21, 0x01, 0x80];
    assert_eq!(read_slot(&slot, 0, 8, true), Some(0x21_0180));
    assert_eq!(read_slot(&slot, 0, 8, false), Some(0x8001_2100_0000_0000));
    assert_eq!(read_slot(&slot, 4, 4, true), Some(0x21_0180));
    assert_eq!(read_slot(&slot, 4, 4, false), Some(0x8001_2100));
    assert_eq!(read_slot(&slot, 5, 4, true), None);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let err = analyze("x", b"#!/bin/sh\necho hi\n").unwrap_err().to_string();
    assert!(err.contains("not an ELF file"), "{err}");
    let good = object(Architecture::X86_64, &[Func { name: "f", before: &[], body: &RET, record: None }], AWO);
    for cut in [5, 20, 64, good.len() / 2] {
        // Truncated files give an error or a report, never a panic.
        let _ = analyze("cut.o", &good[..cut]);
    }
    // Another architecture, and padded ones in a big-endian byte order none
    // of their targets has (aarch64_be is read: see the tests below).
    for (arch, endian, message) in [
        (Architecture::Mips64, Endianness::Little, "is not supported"),
        (Architecture::PowerPc64, Endianness::Little, "is not supported"),
        (Architecture::X86_64, Endianness::Big, "big-endian x86_64 ELF is not supported"),
        (Architecture::Riscv64, Endianness::Big, "big-endian riscv64 ELF is not supported"),
    ] {
        let mut obj = Writer::new(BinaryFormat::Elf, arch, endian);
        let text = obj.add_section(vec![], b".text".to_vec(), SectionKind::Text);
        obj.append_section_data(text, &[0x13, 0, 0, 0], 4);
        let bytes = obj.write().unwrap();
        let err = analyze("o.o", &bytes).unwrap_err().to_string();
        assert!(err.contains(message), "{arch:?} {endian:?}: {err}");
    }
}

#[test]
fn archives_report_each_elf_member_and_skip_metadata() {
    let a = object(Architecture::X86_64, &[Func { name: "a", before: &[], body: &[0x90, 0xc3], record: Some(0) }], AWO);
    let b = object(Architecture::X86_64, &[Func { name: "b", before: &[], body: &RET, record: None }], AWO);
    let ar = archive(&[("a.o", &a), ("lib.rmeta", b"rust metadata"), ("b.o", &b)]);
    let reports = analyze("lib.rlib", &ar).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].path, "lib.rlib(a.o)");
    assert_eq!(reports[1].functions[0].records, 0);
    let err = analyze("empty.a", &archive(&[("lib.rmeta", b"x")])).unwrap_err().to_string();
    assert!(err.contains("no ELF object"), "{err}");
}

#[test]
fn expect_parses_like_the_flag() {
    assert_eq!("16,16".parse::<Expect>(), Ok(Expect { total: 16, prefix: 16 }));
    assert_eq!("2".parse::<Expect>(), Ok(Expect { total: 2, prefix: 0 }));
    assert!("2,4".parse::<Expect>().is_err());
    assert!("x".parse::<Expect>().is_err());
}

#[test]
fn x86_prefix_of_multibyte_nops_is_not_call_padding() {
    // `0f 1f 00` is a nop, but the kernel compares the bytes before a
    // function with 0x90s: the record is this function's, its prefix does
    // not count, and the function has a problem.
    let r = x86(&[Func { name: "f", before: &NOP3, body: &[0x90, 0xc3], record: Some(-3) }]);
    assert!(r.orphans.is_empty(), "{r:?}");
    let f = &r.functions[0];
    assert_eq!((f.prefix_nops, f.entry_nops, f.records), (0, 1, 1));
    assert!(f.problems.iter().any(|p| p.contains("not single-byte 0x90s (0f1f00)")), "{:?}", f.problems);
    let wrong = r.offenders(Expect { total: 4, prefix: 3 }, &[]);
    assert!(wrong[0].1.iter().any(|w| w.contains("0 nops before the symbol, want 3")), "{wrong:?}");
    // Multi-byte nops after the symbol are entry nops as the flag counts them.
    let r = x86(&[Func { name: "g", before: &[0x90; 3], body: &[NOP3.as_slice(), &RET].concat(), record: Some(-3) }]);
    let g = &r.functions[0];
    assert_eq!((g.prefix_nops, g.entry_nops, g.problems.len()), (3, 3, 0), "{g:?}");
}

#[test]
fn patch_site_alignment_in_relocatable_objects_is_bounded_by_the_section() {
    // Section alignment 16 (the writer's), pad start at offset 4: 4-aligned.
    let before = [[0xcc; 4], [0x90; 4]].concat();
    let r = x86(&[Func { name: "f", before: &before, body: &[0x90, 0xc3], record: Some(-4) }]);
    assert_eq!(r.functions[0].prefix_nops, 4);
    assert_eq!(r.functions[0].site_alignment, Some(4));
    let (checked, misaligned) = r.misaligned(8, &[]);
    assert_eq!((checked, misaligned.len()), (1, 1));
    assert!(misaligned[0].1.contains("is 4-aligned, want 8"), "{misaligned:?}");
    assert!(r.misaligned(4, &[]).1.is_empty());
    // At offset 0 the section's own alignment is the bound.
    let r = x86(&[Func { name: "f", before: &[], body: &[0x90, 0xc3], record: Some(0) }]);
    assert_eq!(r.functions[0].site_alignment, Some(16));
    assert_eq!(r.misaligned(32, &["f".to_string()]), (0, vec![]));
}

#[test]
fn align_parses_powers_of_two() {
    assert_eq!(parse_align("16"), Ok(16));
    assert_eq!(parse_align("1"), Ok(1));
    assert!(parse_align("0").is_err());
    assert!(parse_align("12").is_err());
    assert!(parse_align("x").is_err());
}
