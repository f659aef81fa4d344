//! pfe-check: audits ELF relocatable objects, archives (`.a`, `.rlib`) and
//! executables for patchable function entries, the way the kernel uses them:
//! it finds each function's pad through `__patchable_function_entries`,
//! checks that the pad really is nops, and reports functions without a
//! record and records that point at no function.
//!
//! ELF is read with the `object` crate; x86 instructions are decoded with
//! `iced-x86` (entry nops may be multi-byte nop instructions); AArch64
//! instructions are fixed 4-byte words.

use anyhow::{anyhow, bail, Context, Result};
use object::read::archive::ArchiveFile;
use object::{
    Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ObjectSymbol, RelocationFlags,
    RelocationTarget, SectionFlags, SectionIndex, SymbolFlags, SymbolSection,
};
use std::collections::BTreeMap;

mod json;
pub use json::to_json;

pub const RECORD_SECTION: &str = "__patchable_function_entries";

const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_LINK_ORDER: u64 = 0x80;
const STT_FUNC: u8 = 2;
const R_X86_64_RELATIVE: u32 = 8;
const R_AARCH64_RELATIVE: u32 = 1027;

const AARCH64_NOP: u32 = 0xd503_201f;
/// `bti`, `bti c`, `bti j`, `bti jc`: the landing pads LLVM puts first.
const AARCH64_BTI: [(u32, &str); 4] =
    [(0xd503_241f, "bti"), (0xd503_245f, "bti c"), (0xd503_249f, "bti j"), (0xd503_24df, "bti jc")];
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Bytes of one prefix nop (LLVM emits prefix nops one instruction at a
    /// time: `0x90` on x86, `nop` on AArch64).
    fn unit(self) -> u64 {
        match self {
            Arch::X86_64 => 1,
            Arch::Aarch64 => 4,
        }
    }
}

/// One function of an object, as found.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub section: String,
    /// Offset in its section (relocatable objects) or address (executables).
    pub address: u64,
    /// Nops between the start of the pad its record points at and the
    /// symbol; without a record, the 1-unit nops right before the symbol.
    pub prefix_nops: u64,
    /// Nops after the symbol (after the landing pad, if any): bytes on x86,
    /// instructions on AArch64, as the flag counts them.
    pub entry_nops: u64,
    pub landing_pad: Option<&'static str>,
    /// Records that point at this function's pad start.
    pub records: usize,
    /// Where the (first) record points, relative to the symbol.
    pub record_offset: Option<i64>,
    /// The pad's bytes in hex: the prefix nops, the landing pad and the
    /// entry nops, from the pad's start to the first other instruction.
    pub pad: String,
    /// Problems found whatever was expected (a record pointing at non-nops…).
    pub problems: Vec<String>,
}

/// A record that points at no function's pad.
#[derive(Debug)]
pub struct Orphan {
    pub record_section: String,
    pub points_at: String,
}

#[derive(Debug)]
pub struct RecordSection {
    pub name: String,
    pub flags: String,
    pub records: usize,
    pub link_order: bool,
}

/// What one ELF object (or archive member) holds.
#[derive(Debug)]
pub struct Report {
    pub path: String,
    pub kind: String,
    pub arch: Arch,
    pub functions: Vec<Function>,
    pub record_sections: Vec<RecordSection>,
    pub orphans: Vec<Orphan>,
    pub problems: Vec<String>,
}

/// `--expect N,M`: `N` nops in total, `M` of them before the symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub total: u64,
    pub prefix: u64,
}

impl std::str::FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (total, prefix) = match s.split_once(',') {
            Some((t, p)) => (t, p),
            None => (s, "0"),
        };
        let total: u64 = total.parse().map_err(|_| format!("`{total}` is not a number of nops"))?;
        let prefix: u64 = prefix.parse().map_err(|_| format!("`{prefix}` is not a number of nops"))?;
        if prefix > total {
            return Err(format!("prefix {prefix} is larger than the total {total}"));
        }
        Ok(Expect { total, prefix })
    }
}

/// Reads a file's bytes: an ELF object or executable, or an archive of them.
/// Archive members that are not ELF (an rlib's `lib.rmeta`, symbol tables)
/// are skipped; an archive with no ELF member is an error.
pub fn analyze(path: &str, data: &[u8]) -> Result<Vec<Report>> {
    if let Ok(archive) = ArchiveFile::parse(data) {
        let mut reports = Vec::new();
        for member in archive.members() {
            let member = member.with_context(|| format!("{path}: malformed archive"))?;
            let name = String::from_utf8_lossy(member.name()).into_owned();
            let bytes = member.data(data).with_context(|| format!("{path}({name}): truncated member"))?;
            if !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            reports.push(analyze_object(&format!("{path}({name})"), bytes)?);
        }
        if reports.is_empty() {
            bail!("{path}: an archive with no ELF object in it");
        }
        return Ok(reports);
    }
    Ok(vec![analyze_object(path, data)?])
}

fn analyze_object(path: &str, data: &[u8]) -> Result<Report> {
    if !data.starts_with(b"\x7fELF") {
        bail!("{path}: not an ELF file (nor an archive of ELF objects)");
    }
    let file = object::File::parse(data).map_err(|e| anyhow!("{path}: malformed or truncated ELF: {e}"))?;
    if file.format() != BinaryFormat::Elf {
        bail!("{path}: not an ELF file");
    }
    let arch = match file.architecture() {
        Architecture::X86_64 => Arch::X86_64,
        Architecture::Aarch64 => Arch::Aarch64,
        other => bail!("{path}: architecture {other:?} is not supported (x86_64 and aarch64 are)"),
    };
    let kind = match file.kind() {
        ObjectKind::Relocatable => "relocatable",
        ObjectKind::Executable => "executable",
        ObjectKind::Dynamic => "shared object",
        _ => "unknown",
    };
    let relocatable = file.kind() == ObjectKind::Relocatable;

    // Section data and base address by index, checked once.
    let mut sections = BTreeMap::new();
    for section in file.sections() {
        let data = section.data().map_err(|e| anyhow!("{path}: section {}: {e}", section.index().0))?;
        let name = section.name().unwrap_or("?").to_string();
        sections.insert(section.index().0, (name, section.address(), data));
    }

    // Records: (section, offset) each points at.
    let dynamic: BTreeMap<u64, i64> = file
        .dynamic_relocations()
        .map(|relocs| {
            relocs
                .filter(|(_, r)| {
                    matches!(r.flags(), RelocationFlags::Elf { r_type } if r_type == R_X86_64_RELATIVE || r_type == R_AARCH64_RELATIVE)
                })
                .map(|(offset, r)| (offset, r.addend()))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut record_sections = Vec::new();
    let mut targets: Vec<(String, Option<(usize, u64)>, String)> = Vec::new();
    for section in file.sections().filter(|s| s.name() == Ok(RECORD_SECTION)) {
        let sh_flags = match section.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        let flags = flag_letters(sh_flags);
        let data = section.data()?;
        if data.len() % 8 != 0 {
            problems.push(format!("{RECORD_SECTION} section {} is {} bytes, not a multiple of 8", section.index().0, data.len()));
        }
        let name = format!("{RECORD_SECTION}[{}]", section.index().0);
        let mut count = 0;
        if relocatable {
            for (offset, reloc) in section.relocations() {
                count += 1;
                let addend = if reloc.has_implicit_addend() {
                    read_u64(data, offset).unwrap_or(0) as i64
                } else {
                    reloc.addend()
                };
                let target = match reloc.target() {
                    RelocationTarget::Symbol(index) => {
                        let symbol = file.symbol_by_index(index)?;
                        match symbol.section() {
                            SymbolSection::Section(sec) => Some((sec.0, symbol.address().wrapping_add(addend as u64))),
                            _ => None,
                        }
                    }
                    RelocationTarget::Section(sec) => Some((sec.0, addend as u64)),
                    _ => None,
                };
                targets.push((name.clone(), target, format!("relocation at +{offset:#x}")));
            }
            let expected = data.len() / 8;
            if count != expected {
                problems.push(format!("{name}: {expected} slots but {count} relocations"));
            }
        } else {
            for i in 0..data.len() / 8 {
                count += 1;
                let at = section.address() + 8 * i as u64;
                let value = match dynamic.get(&at) {
                    Some(addend) => *addend as u64,
                    None => read_u64(data, 8 * i as u64).unwrap_or(0),
                };
                let target = file
                    .sections()
                    .find(|s| s.address() <= value && value < s.address() + s.size() && s.size() > 0)
                    .map(|s| (s.index().0, value - s.address()));
                targets.push((name.clone(), target, format!("address {value:#x}")));
            }
        }
        record_sections.push(RecordSection {
            name,
            flags: flags.clone(),
            records: count,
            link_order: sh_flags & SHF_LINK_ORDER != 0,
        });
        if relocatable && sh_flags & (SHF_ALLOC | SHF_WRITE | SHF_LINK_ORDER) != SHF_ALLOC | SHF_WRITE | SHF_LINK_ORDER {
            problems.push(format!("{RECORD_SECTION} section {} has flags `{flags}`, not `awo`", section.index().0));
        }
    }

    // Functions: defined STT_FUNC symbols, aliases at one address merged.
    let mut by_location: BTreeMap<(usize, u64), (String, u64, bool)> = BTreeMap::new();
    for symbol in file.symbols() {
        let SymbolFlags::Elf { st_info, .. } = symbol.flags() else { continue };
        if st_info & 0xf != STT_FUNC || !symbol.is_definition() {
            continue;
        }
        let SymbolSection::Section(SectionIndex(sec)) = symbol.section() else { continue };
        let Some((_, base, _)) = sections.get(&sec) else { continue };
        let offset = symbol.address().wrapping_sub(*base);
        let name = symbol.name().unwrap_or("?").to_string();
        let global = symbol.is_global();
        let entry = by_location.entry((sec, offset)).or_insert((name.clone(), symbol.size(), global));
        if global && !entry.2 {
            *entry = (name, symbol.size().max(entry.1), true);
        }
    }

    // Records by where they point, so each function looks only at those
    // within its reach instead of at every record of the file.
    let mut by_target: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for (i, (_, target, _)) in targets.iter().enumerate() {
        if let Some(at) = target {
            by_target.entry(*at).or_default().push(i);
        }
    }
    let mut functions = Vec::new();
    let mut matched = vec![false; targets.len()];
    for ((sec, offset), (name, size, _)) in &by_location {
        let (section_name, base, data) = &sections[sec];
        let end = if *size > 0 { offset.saturating_add(*size) } else { data.len() as u64 };
        let mut f = Function {
            name: name.clone(),
            section: section_name.clone(),
            address: base + offset,
            prefix_nops: 0,
            entry_nops: 0,
            landing_pad: None,
            records: 0,
            record_offset: None,
            pad: String::new(),
            problems: Vec::new(),
        };
        if (*offset as usize) > data.len() || (end as usize) > data.len() {
            // A function in a NOBITS section or past its data: nothing to read.
            f.problems.push("no code bytes in the file".to_string());
            functions.push(f);
            continue;
        }
        let code = &data[*offset as usize..end as usize];
        let (pad, pad_len) = landing_pad(arch, code);
        f.landing_pad = pad;
        f.entry_nops = count_nops(arch, &code[pad_len..]);
        // Records pointing into this function's reach: before the symbol
        // (prefix) or at the symbol / after its landing pad.
        let reach = 255 * arch.unit();
        let pad_start_without_prefix = offset + pad_len as u64;
        let mut best_prefix = None;
        // In the records' own order, as the first function to claim one keeps it.
        let mut candidates: Vec<usize> = by_target
            .range((*sec, offset.saturating_sub(reach))..=(*sec, pad_start_without_prefix))
            .flat_map(|(_, indices)| indices.iter().copied())
            .collect();
        candidates.sort_unstable();
        for i in candidates {
            let Some((_, toff)) = &targets[i].1 else { continue };
            if matched[i] {
                continue;
            }
            if *toff == pad_start_without_prefix {
                matched[i] = true;
                f.records += 1;
                f.record_offset.get_or_insert(*toff as i64 - *offset as i64);
                best_prefix.get_or_insert(0);
            } else if *toff < *offset && offset - toff <= reach {
                // Ours only if everything from there to the symbol is
                // one-unit nops; otherwise it points into an earlier function.
                if let Some(nops) = prefix_only_nops(arch, &data[*toff as usize..*offset as usize]) {
                    matched[i] = true;
                    f.records += 1;
                    f.record_offset.get_or_insert(*toff as i64 - *offset as i64);
                    best_prefix = Some(nops);
                }
            } else if *toff == *offset && pad_len > 0 {
                matched[i] = true;
                f.records += 1;
                f.record_offset.get_or_insert(0);
                f.problems.push(format!("record points at the landing pad (`{}`), not after it", pad.unwrap_or("?")));
            }
        }
        f.prefix_nops = match best_prefix {
            Some(n) => n,
            None => nops_before(arch, &data[..*offset as usize]),
        };
        let pad_from = (*offset).saturating_sub(f.prefix_nops * arch.unit()) as usize;
        let pad_to = (*offset as usize + pad_len + (f.entry_nops * arch.unit()) as usize).min(data.len());
        f.pad = data[pad_from..pad_to].iter().map(|b| format!("{b:02x}")).collect();
        functions.push(f);
    }

    let mut orphans = Vec::new();
    for (i, (section, target, how)) in targets.iter().enumerate() {
        if matched[i] {
            continue;
        }
        let points_at = match target {
            Some((sec, off)) => {
                let (name, _, _) = &sections[sec];
                let near = by_location
                    .range(..=(*sec, off + 255 * arch.unit()))
                    .rev()
                    .find(|((s, _), _)| s == sec)
                    .map(|((_, o), (n, _, _))| format!(" (near {n} at {o:#x})"))
                    .unwrap_or_default();
                format!("{name}+{off:#x}{near}, {how}")
            }
            None => format!("nothing in this file, {how}"),
        };
        orphans.push(Orphan { record_section: section.clone(), points_at });
    }

    Ok(Report { path: path.to_string(), kind: kind.to_string(), arch, functions, record_sections, orphans, problems })
}

fn read_u64(data: &[u8], offset: u64) -> Option<u64> {
    let offset = usize::try_from(offset).ok()?;
    let bytes = data.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn flag_letters(sh_flags: u64) -> String {
    let mut s = String::new();
    if sh_flags & SHF_ALLOC != 0 {
        s.push('a');
    }
    if sh_flags & SHF_WRITE != 0 {
        s.push('w');
    }
    if sh_flags & 0x4 != 0 {
        s.push('x');
    }
    if sh_flags & SHF_LINK_ORDER != 0 {
        s.push('o');
    }
    s
}

/// The landing pad a function starts with, and its length.
fn landing_pad(arch: Arch, code: &[u8]) -> (Option<&'static str>, usize) {
    match arch {
        Arch::X86_64 if code.starts_with(&ENDBR64) => (Some("endbr64"), 4),
        Arch::Aarch64 => match aarch64_word(code, 0) {
            Some(word) => match AARCH64_BTI.iter().find(|(w, _)| *w == word) {
                Some((_, name)) => (Some(name), 4),
                None => (None, 0),
            },
            None => (None, 0),
        },
        _ => (None, 0),
    }
}

fn aarch64_word(code: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(code.get(at..at + 4)?.try_into().ok()?))
}

/// Nops at the start of `code`: bytes of nop instructions on x86 (any
/// length), nop instructions on AArch64.
pub fn count_nops(arch: Arch, code: &[u8]) -> u64 {
    match arch {
        Arch::Aarch64 => (0..code.len() / 4).take_while(|i| aarch64_word(code, i * 4) == Some(AARCH64_NOP)).count() as u64,
        Arch::X86_64 => {
            let mut decoder = iced_x86::Decoder::new(64, code, iced_x86::DecoderOptions::NONE);
            let mut bytes = 0u64;
            while decoder.can_decode() {
                let instruction = decoder.decode();
                if instruction.is_invalid() || instruction.mnemonic() != iced_x86::Mnemonic::Nop {
                    break;
                }
                bytes += instruction.len() as u64;
            }
            bytes
        }
    }
}

/// `Some(n)` when `bytes` is nothing but `n` one-unit nops (LLVM emits
/// prefix nops one `0x90` or one AArch64 `nop` at a time).
fn prefix_only_nops(arch: Arch, bytes: &[u8]) -> Option<u64> {
    let ones = match arch {
        Arch::X86_64 => bytes.iter().all(|b| *b == 0x90),
        Arch::Aarch64 => bytes.len() % 4 == 0 && count_nops(arch, bytes) * 4 == bytes.len() as u64,
    };
    ones.then_some(bytes.len() as u64 / arch.unit())
}

/// One-unit nops right before a function without a record (informational:
/// on x86 alignment padding can look the same).
fn nops_before(arch: Arch, before: &[u8]) -> u64 {
    match arch {
        Arch::X86_64 => before.iter().rev().take_while(|b| **b == 0x90).count() as u64,
        Arch::Aarch64 => {
            let words = before.len() / 4;
            (1..=words).take_while(|i| aarch64_word(before, before.len() - 4 * i) == Some(AARCH64_NOP)).count() as u64
        }
    }
}

impl Report {
    /// Functions that do not match `expect`, each with what is wrong; names
    /// containing any of `skip` are left out.
    pub fn offenders(&self, expect: Expect, skip: &[String]) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for f in &self.functions {
            if skip.iter().any(|s| f.name.contains(s.as_str())) {
                continue;
            }
            let mut wrong = f.problems.clone();
            let want_entry = expect.total - expect.prefix;
            if f.prefix_nops != expect.prefix {
                wrong.push(format!("{} nops before the symbol, want {}", f.prefix_nops, expect.prefix));
            }
            if f.entry_nops != want_entry {
                wrong.push(format!("{} nops after the symbol, want {want_entry}", f.entry_nops));
            }
            let want_records = usize::from(expect.total > 0);
            if f.records != want_records {
                wrong.push(format!("{} records point at its pad, want {want_records}", f.records));
            }
            if !wrong.is_empty() {
                out.push((f.name.clone(), wrong));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
