//! ORC, x86's unwind tables, counted for the Rust functions of a linked
//! `vmlinux`: a Rust function is unwindable when the entry in force at its
//! first byte, and at the return address of every call in it, says where
//! the frame is (`sp_reg` not `ORC_REG_UNDEFINED`). Calls after which the
//! function cannot go on (the next instruction is `ud2` or past the
//! function: calls of functions that do not return) have no return address
//! on a stack. Livepatch's consistency model needs these entries to tell a
//! task's stack is reliable; without objtool on Rust objects (the kernel
//! series' kbuild patch) no Rust function has them.
//!
//! The tables are read from the ELF file by a small reader of section
//! headers (64-bit little-endian, every read checked); the functions and
//! instructions come from `llvm-objdump-14`, as elsewhere in the audit.

use super::audit::{parse_symbols, Symbol};
use crate::cmd;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

/// One section header of an ELF file.
#[derive(Debug, PartialEq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
}

fn slice(bytes: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(at).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

fn u16_at(bytes: &[u8], at: u64) -> Option<u16> {
    Some(u16::from_le_bytes(slice(bytes, at, 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: u64) -> Option<u32> {
    Some(u32::from_le_bytes(slice(bytes, at, 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: u64) -> Option<u64> {
    Some(u64::from_le_bytes(slice(bytes, at, 8)?.try_into().ok()?))
}

/// The section headers of a 64-bit little-endian ELF file; None for
/// anything else or a header that points outside the file.
pub fn sections(bytes: &[u8]) -> Option<Vec<Section>> {
    if slice(bytes, 0, 6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = u64_at(bytes, 0x28)?;
    let shentsize = u64::from(u16_at(bytes, 0x3a)?);
    let shnum = u64::from(u16_at(bytes, 0x3c)?);
    let shstrndx = u64::from(u16_at(bytes, 0x3e)?);
    if shentsize < 0x40 {
        return None;
    }
    let header = |i: u64| -> Option<(u32, u64, u64, u64)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let field = |off: u64| at.checked_add(off);
        Some((u32_at(bytes, at)?, u64_at(bytes, field(0x10)?)?, u64_at(bytes, field(0x18)?)?, u64_at(bytes, field(0x20)?)?))
    };
    let (_, _, names_at, names_size) = header(shstrndx)?;
    let names = slice(bytes, names_at, names_size)?;
    let mut out = Vec::new();
    for i in 0..shnum {
        let (name, addr, offset, size) = header(i)?;
        let tail = names.get(usize::try_from(name).ok()?..)?;
        let end = tail.iter().position(|b| *b == 0)?;
        let name = String::from_utf8_lossy(&tail[..end]).into_owned();
        out.push(Section { name, addr, offset, size });
    }
    Some(out)
}

/// The ORC table of a linked image: (address, defined) for each entry,
/// sorted by address. `.orc_unwind_ip` holds 32-bit offsets, each from its
/// own place; `.orc_unwind` the 6-byte entries in the same order
/// (`sp_offset`, `bp_offset`, then `sp_reg` in the low 4 bits).
pub fn orc_table(bytes: &[u8]) -> Option<Vec<(u64, bool)>> {
    let sections = sections(bytes)?;
    let find = |name: &str| sections.iter().find(|s| s.name == name);
    let (ips, unwind) = (find(".orc_unwind_ip")?, find(".orc_unwind")?);
    let ip_bytes = slice(bytes, ips.offset, ips.size)?;
    let unwind_bytes = slice(bytes, unwind.offset, unwind.size)?;
    let n = ip_bytes.len() / 4;
    if unwind_bytes.len() / 6 != n {
        return None;
    }
    let mut table = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let rel = u32_at(ip_bytes, 4 * i)? as i32;
        let ip = ips.addr.wrapping_add(4 * i).wrapping_add(rel as i64 as u64);
        let bits = u16_at(unwind_bytes, 6 * i + 4)?;
        table.push((ip, bits & 0xf != 0));
    }
    table.sort();
    Some(table)
}

/// What an instruction is, for the count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Insn {
    Call,
    Ud2,
    Other,
}

/// `ADDRESS: <tab>MNEMONIC ...` lines of `llvm-objdump -d --no-show-raw-insn`.
pub fn parse_insns(text: &str) -> Vec<(u64, Insn)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((address, rest)) = line.split_once(':') else { continue };
        let address = address.trim();
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let (Ok(address), Some(mnemonic)) = (u64::from_str_radix(address, 16), rest.split_whitespace().next()) else { continue };
        let kind = if mnemonic.starts_with("call") {
            Insn::Call
        } else if mnemonic == "ud2" {
            Insn::Ud2
        } else {
            Insn::Other
        };
        out.push((address, kind));
    }
    out
}

/// The count: how many of `functions` are unwindable, and the call sites
/// looked at.
#[derive(Debug, PartialEq)]
pub struct Count {
    pub unwindable: usize,
    pub functions: usize,
    pub call_sites: usize,
    pub entries: usize,
    /// Some functions that are not, for the error.
    pub not: Vec<String>,
}

/// Whether the ORC entry in force at `address` (the last at or before it)
/// is defined.
fn defined_at(table: &[(u64, bool)], address: u64) -> bool {
    let i = table.partition_point(|(ip, _)| *ip <= address);
    i > 0 && table[i - 1].1
}

pub fn count(table: &[(u64, bool)], functions: &[Symbol], insns: &[(u64, Insn)]) -> Count {
    let mut count = Count { unwindable: 0, functions: functions.len(), call_sites: 0, entries: table.len(), not: Vec::new() };
    for f in functions {
        let end = f.value.saturating_add(f.size);
        let mut ok = defined_at(table, f.value);
        let first = insns.partition_point(|(a, _)| *a < f.value);
        let body = &insns[first..insns.partition_point(|(a, _)| *a < end)];
        for (i, (_, kind)) in body.iter().enumerate() {
            if *kind != Insn::Call {
                continue;
            }
            match body.get(i + 1) {
                Some((next, next_kind)) if *next_kind != Insn::Ud2 => {
                    count.call_sites += 1;
                    ok &= defined_at(table, *next);
                }
                _ => {}
            }
        }
        if ok {
            count.unwindable += 1;
        } else if count.not.len() < 5 {
            count.not.push(f.name.clone());
        }
    }
    count
}

/// The count for the functions of `vmlinux` named in `rust` (the functions
/// of the rustc-built objects linked into it).
pub fn count_vmlinux(vmlinux: &Path, rust: &BTreeSet<String>) -> Result<Count> {
    let bytes = fs::read(vmlinux).with_context(|| format!("cannot read {}", vmlinux.display()))?;
    let Some(table) = orc_table(&bytes) else {
        bail!("{} has no ORC tables this reader understands (.orc_unwind_ip, .orc_unwind)", vmlinux.display());
    };
    let symbols = parse_symbols(&cmd::output(Command::new("llvm-objdump-14").arg("-t").arg(vmlinux))?);
    let mut functions: Vec<Symbol> = symbols.into_iter().filter(|s| s.size > 0 && rust.contains(&s.name)).collect();
    functions.sort_by_key(|s| s.value);
    let (Some(first), Some(last)) = (functions.first(), functions.iter().map(|s| s.value + s.size).max()) else {
        bail!("no Rust function in {}", vmlinux.display());
    };
    let text = cmd::output(
        Command::new("llvm-objdump-14")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={:#x}", first.value))
            .arg(format!("--stop-address={last:#x}"))
            .arg(vmlinux),
    )?;
    Ok(count(&table, &functions, &parse_insns(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, value: u64, size: u64) -> Symbol {
        Symbol { name: name.into(), section: ".text".into(), value, size, weak: false }
    }

    #[test]
    fn a_function_counts_when_its_entry_and_return_addresses_are_defined() {
        let insns = parse_insns(
            "ffffffff81000000 <a>:\n\
             ffffffff81000000:      \tnopl\t8(%rax,%rax)\n\
             ffffffff81000005:      \tcallq\t0xffffffff81000100 <c>\n\
             ffffffff8100000a:      \tretq\n\
             ffffffff81000010 <b>:\n\
             ffffffff81000010:      \tcallq\t0xffffffff81000200 <panic>\n\
             ffffffff81000015:      \tud2\n\
             ffffffff81000017:      \tcallq\t0xffffffff81000200 <panic>\n",
        );
        assert_eq!(insns.len(), 6);
        assert_eq!(insns[1], (0xffffffff81000005, Insn::Call));
        assert_eq!(insns[4], (0xffffffff81000015, Insn::Ud2));
        let (a, b) = (f("a", 0xffffffff81000000, 0x10), f("b", 0xffffffff81000010, 0xc));
        // `b`'s calls do not return: only its entry counts, covered by the
        // entry before it.
        let table = vec![(0xffffffff81000000, true), (0xffffffff8100000a, true), (0xffffffff81000020, false)];
        let counted = count(&table, &[a.clone(), b.clone()], &insns);
        assert_eq!((counted.unwindable, counted.functions, counted.call_sites), (2, 2, 1));
        // The return address of `a`'s call in an undefined entry.
        let table = vec![(0xffffffff81000000, true), (0xffffffff8100000a, false), (0xffffffff81000010, true)];
        let counted = count(&table, &[a.clone(), b.clone()], &insns);
        assert_eq!((counted.unwindable, counted.not.as_slice()), (1, &["a".to_string()][..]));
        // No entry at or before a function: not unwindable.
        assert_eq!(count(&[(0xffffffff81000010, true)], &[a], &insns).unwindable, 0);
    }

    /// A small ELF file with the two ORC sections, made here: the offsets
    /// in `.orc_unwind_ip` are relative to each entry's own address.
    fn elf_with_orc(entries: &[(u64, u16)]) -> Vec<u8> {
        let names = b"\0.orc_unwind_ip\0.orc_unwind\0.shstrtab\0";
        let ip_addr = 0xffffffff82000000u64;
        let mut ips = Vec::new();
        let mut unwind = Vec::new();
        for (i, (ip, bits)) in entries.iter().enumerate() {
            let rel = ip.wrapping_sub(ip_addr + 4 * i as u64) as i64 as i32;
            ips.extend(rel.to_le_bytes());
            unwind.extend([0u8; 4]);
            unwind.extend(bits.to_le_bytes());
        }
        let mut file = vec![0u8; 0x40];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let ips_at = file.len() as u64;
        file.extend(&ips);
        let unwind_at = file.len() as u64;
        file.extend(&unwind);
        let names_at = file.len() as u64;
        file.extend(names);
        let shoff = file.len() as u64;
        let mut header = |name: u32, addr: u64, offset: u64, size: u64| {
            let mut h = vec![0u8; 0x40];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x10..0x18].copy_from_slice(&addr.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            file.extend(h);
        };
        header(0, 0, 0, 0);
        header(1, ip_addr, ips_at, ips.len() as u64);
        header(16, 0xffffffff83000000, unwind_at, unwind.len() as u64);
        header(28, 0, names_at, names.len() as u64);
        file[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&3u16.to_le_bytes());
        file
    }

    #[test]
    fn the_orc_tables_are_read_from_the_elf_file_and_sorted() {
        let file = elf_with_orc(&[(0xffffffff81000010, 0x0005), (0xffffffff81000000, 0x0014), (0xffffffff81000020, 0x0000)]);
        let names: Vec<String> = sections(&file).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["", ".orc_unwind_ip", ".orc_unwind", ".shstrtab"]);
        assert_eq!(
            orc_table(&file).unwrap(),
            [(0xffffffff81000000, true), (0xffffffff81000010, true), (0xffffffff81000020, false)]
        );
        // Anything cut short, or not ELF64 little-endian, is None, never a panic.
        for len in [0, 5, 0x30, file.len() - 0x19] {
            assert_eq!(orc_table(&file[..len]), None, "cut at {len}");
        }
        let mut big_endian = file.clone();
        big_endian[5] = 2;
        assert_eq!(sections(&big_endian), None);
        let mut bad_offset = file;
        bad_offset[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(sections(&bad_offset), None);
    }
}
