//! pfe-check: audits ELF relocatable objects, archives (`.a`, `.rlib`) and
//! executables for patchable function entries, the way the kernel uses them:
//! it finds each function's pad through `__patchable_function_entries`,
//! checks that the pad really is nops, where the record points and how that
//! place is aligned, and reports functions without a record and records that
//! point at no function.
//!
//! It reads every target the series pads: ELF32 and ELF64, i686, x32,
//! x86_64, aarch64 (and its ILP32 ABI), riscv32 and riscv64, little-endian,
//! and aarch64 big-endian too (`aarch64_be-unknown-linux-gnu`, ELF64, and
//! `aarch64_be-unknown-linux-gnu_ilp32`, ELF32): record pointers and
//! relocations are read in the file's byte order, while AArch64 instructions
//! are little-endian in memory whatever the data's byte order (a `nop` is
//! `1f 20 03 d5` on aarch64_be too), so they decode the same. ELF is read with
//! the `object` crate (its `elf` constants are the only ones used);
//! instructions are decoded by LLVM 14's own disassembler ([`decode`]), the
//! one source of truth for "is this a nop" and "is this a landing pad" on
//! every target. Anything else (another architecture, big-endian other than
//! aarch64, not ELF, truncated) is an error, never a panic: the parsers return errors, every index into the
//! file's bytes is checked, and a fuzz test over mutated real objects holds
//! that.

pub mod decode;
mod json;

use anyhow::{anyhow, bail, Context, Result};
use decode::{Insn, Kind};
use object::elf;
use object::read::archive::ArchiveFile;
use object::{
    Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
    SectionFlags, SectionIndex, SymbolFlags, SymbolSection,
};
use std::collections::BTreeMap;

pub use json::to_json;

pub const RECORD_SECTION: &str = "__patchable_function_entries";

/// The most nops a pad can have on either side of the symbol (the flag's
/// and the attribute's limit is 255).
const MAX_NOPS: u64 = 255;

/// The architectures the series pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// i686: ELF32, `EM_386`.
    X86,
    /// x32: ELF32, `EM_X86_64`.
    X32,
    X86_64,
    /// aarch64 and aarch64_be: ELF64, `EM_AARCH64`.
    Aarch64,
    /// aarch64 ILP32 (`aarch64_be-unknown-linux-gnu_ilp32`): ELF32,
    /// `EM_AARCH64`, 4-byte records.
    Aarch64Ilp32,
    Riscv32,
    Riscv64,
}

impl Arch {
    pub const ALL: [Arch; 7] =
        [Arch::X86, Arch::X32, Arch::X86_64, Arch::Aarch64, Arch::Aarch64Ilp32, Arch::Riscv32, Arch::Riscv64];

    /// The name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X32 => "x32",
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Aarch64Ilp32 => "aarch64_ilp32",
            Arch::Riscv32 => "riscv32",
            Arch::Riscv64 => "riscv64",
        }
    }

    pub fn is_x86(self) -> bool {
        matches!(self, Arch::X86 | Arch::X32 | Arch::X86_64)
    }

    /// `-fpatchable-function-entry` counts bytes of nops on x86 (entry nops
    /// may be multi-byte instructions) and nop instructions elsewhere
    /// (RISC-V's `c.nop` and `nop` count one each).
    fn counts_bytes(self) -> bool {
        self.is_x86()
    }

    /// The longest nop a pad is made of, which bounds how far before a
    /// symbol its prefix can start.
    fn max_nop_len(self) -> u64 {
        if self.is_x86() {
            1
        } else {
            4
        }
    }

    /// The lengths a one-unit prefix nop may have: the kernel's x86 call
    /// padding accepts only single-byte `0x90`s.
    fn prefix_nop_lens(self) -> &'static [usize] {
        match self {
            Arch::X86 | Arch::X32 | Arch::X86_64 => &[1],
            Arch::Aarch64 | Arch::Aarch64Ilp32 => &[4],
            Arch::Riscv32 | Arch::Riscv64 => &[4, 2],
        }
    }

    /// The relocation a record is in a relocatable object, and its name.
    fn record_relocation(self) -> (u32, &'static str) {
        match self {
            Arch::X86 => (elf::R_386_32, "R_386_32"),
            Arch::X32 => (elf::R_X86_64_32, "R_X86_64_32"),
            Arch::X86_64 => (elf::R_X86_64_64, "R_X86_64_64"),
            Arch::Aarch64 => (elf::R_AARCH64_ABS64, "R_AARCH64_ABS64"),
            Arch::Aarch64Ilp32 => (elf::R_AARCH64_P32_ABS32, "R_AARCH64_P32_ABS32"),
            Arch::Riscv32 => (elf::R_RISCV_32, "R_RISCV_32"),
            Arch::Riscv64 => (elf::R_RISCV_64, "R_RISCV_64"),
        }
    }

    /// The dynamic relocation that fills a record in a position-independent
    /// executable or shared object.
    fn relative_relocation(self) -> u32 {
        match self {
            Arch::X86 => elf::R_386_RELATIVE,
            Arch::X32 | Arch::X86_64 => elf::R_X86_64_RELATIVE,
            Arch::Aarch64 => elf::R_AARCH64_RELATIVE,
            Arch::Aarch64Ilp32 => elf::R_AARCH64_P32_RELATIVE,
            Arch::Riscv32 | Arch::Riscv64 => elf::R_RISCV_RELATIVE,
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
    /// symbol; without a record, the one-unit nops right before the symbol.
    /// On x86 only single-byte `0x90`s count, as the kernel requires.
    pub prefix_nops: u64,
    /// Nops after the symbol (after the landing pad, if any): bytes on x86,
    /// instructions elsewhere, as the flag counts them.
    pub entry_nops: u64,
    pub landing_pad: Option<&'static str>,
    /// Records that point at this function's pad start.
    pub records: usize,
    /// Where the (first) record points, relative to the symbol.
    pub record_offset: Option<i64>,
    /// The alignment the (first) record's patch site is guaranteed: in a
    /// relocatable object, bounded by its section's alignment.
    pub site_alignment: Option<u64>,
    /// The pad's bytes in hex: the prefix nops, the landing pad and the
    /// entry nops, from the pad's start to the first other instruction.
    pub pad: String,
    /// Problems found whatever was expected (a record pointing at the
    /// landing pad, an x86 prefix of multi-byte nops…).
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

/// One record's patch site: where it points and how that place is aligned.
#[derive(Debug)]
pub struct PatchSite {
    /// The function whose pad it starts, if any (else it is an orphan).
    pub function: Option<String>,
    /// `section+offset` (relocatable) or the address (executables).
    pub location: String,
    /// The largest power of two the site is guaranteed to be aligned to
    /// (0 when the record points outside the file).
    pub alignment: u64,
}

/// What one ELF object (or archive member) holds.
#[derive(Debug)]
pub struct Report {
    pub path: String,
    pub kind: String,
    pub arch: Arch,
    /// The file's byte order (`ELFDATA2MSB`): that of its record pointers
    /// and relocations, not of its instructions on aarch64_be.
    pub big_endian: bool,
    pub functions: Vec<Function>,
    pub record_sections: Vec<RecordSection>,
    pub sites: Vec<PatchSite>,
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

/// `--align N`: a power of two.
pub fn parse_align(s: &str) -> std::result::Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n.is_power_of_two() => Ok(n),
        Ok(n) => Err(format!("alignment {n} is not a power of two")),
        Err(_) => Err(format!("`{s}` is not an alignment in bytes")),
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
            if !bytes.starts_with(&elf::ELFMAG) {
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

/// A section's name, address, bytes and alignment.
struct Section<'data> {
    name: String,
    address: u64,
    data: &'data [u8],
    align: u64,
}

/// Where a record points: a section and an offset in it.
type Target = (usize, u64);

fn analyze_object(path: &str, data: &[u8]) -> Result<Report> {
    if !data.starts_with(&elf::ELFMAG) {
        bail!("{path}: not an ELF file (nor an archive of ELF objects)");
    }
    // The identification bytes say the byte order before `object` reads
    // anything else (`e_ident` is bytes, the same in either order).
    let big_endian =
        match object::pod::from_bytes::<elf::FileHeader32<object::LittleEndian>>(data).map(|(header, _)| header.e_ident.data) {
            Ok(elf::ELFDATA2LSB) => false,
            Ok(elf::ELFDATA2MSB) => true,
            _ => bail!("{path}: truncated ELF header or unknown byte order"),
        };
    let file = object::File::parse(data).map_err(|e| anyhow!("{path}: malformed or truncated ELF: {e}"))?;
    if file.format() != BinaryFormat::Elf {
        bail!("{path}: not an ELF file");
    }
    let arch = match file.architecture() {
        Architecture::I386 if !file.is_64() => Arch::X86,
        Architecture::X86_64_X32 => Arch::X32,
        Architecture::X86_64 => Arch::X86_64,
        Architecture::Aarch64 => Arch::Aarch64,
        Architecture::Aarch64_Ilp32 => Arch::Aarch64Ilp32,
        Architecture::Riscv32 => Arch::Riscv32,
        Architecture::Riscv64 => Arch::Riscv64,
        other => bail!(
            "{path}: architecture {other:?} ({}) is not supported; \
             supported: ELF i686, x32, x86_64, aarch64 (LP64 and ILP32), riscv32, riscv64",
            if file.is_64() { "ELF64" } else { "ELF32" }
        ),
    };
    // aarch64_be is the only big-endian target the series pads; big-endian
    // x86 does not exist, and LLVM 14 has no big-endian RISC-V.
    if big_endian && !matches!(arch, Arch::Aarch64 | Arch::Aarch64Ilp32) {
        bail!(
            "{path}: big-endian {} ELF is not supported (aarch64_be is the only big-endian target the series pads)",
            arch.name()
        );
    }
    let kind = match file.kind() {
        ObjectKind::Relocatable => "relocatable",
        ObjectKind::Executable => "executable",
        ObjectKind::Dynamic => "shared object",
        _ => "unknown",
    };
    let relocatable = file.kind() == ObjectKind::Relocatable;
    let slot: usize = if file.is_64() { 8 } else { 4 };

    // Section data, base address and alignment by index, read once.
    let mut sections = BTreeMap::new();
    for section in file.sections() {
        let data = section.data().map_err(|e| anyhow!("{path}: section {}: {e}", section.index().0))?;
        let name = section.name().unwrap_or("?").to_string();
        sections.insert(section.index().0, Section { name, address: section.address(), data, align: section.align() });
    }

    // Records: (section, offset) each points at.
    let dynamic: BTreeMap<u64, Option<i64>> = file
        .dynamic_relocations()
        .map(|relocs| {
            relocs
                .filter(|(_, r)| matches!(r.flags(), RelocationFlags::Elf { r_type } if r_type == arch.relative_relocation()))
                .map(|(offset, r)| (offset, (!r.has_implicit_addend()).then_some(r.addend())))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut record_sections = Vec::new();
    let mut targets: Vec<(String, Option<Target>, String)> = Vec::new();
    let (record_reloc, record_reloc_name) = arch.record_relocation();
    for section in file.sections().filter(|s| s.name() == Ok(RECORD_SECTION)) {
        let sh_flags = match section.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        let flags = flag_letters(sh_flags);
        let data = sections.get(&section.index().0).map_or(&[][..], |s| s.data);
        if data.len() % slot != 0 {
            problems.push(format!(
                "{RECORD_SECTION} section {} is {} bytes, not a multiple of {slot}",
                section.index().0,
                data.len()
            ));
        }
        let name = format!("{RECORD_SECTION}[{}]", section.index().0);
        let mut count = 0;
        if relocatable {
            let mut wrong_types = BTreeMap::new();
            for (offset, reloc) in section.relocations() {
                count += 1;
                if let RelocationFlags::Elf { r_type } = reloc.flags() {
                    if r_type != record_reloc {
                        *wrong_types.entry(r_type).or_insert(0) += 1;
                    }
                }
                let addend = if reloc.has_implicit_addend() {
                    read_slot(data, offset, slot, big_endian).unwrap_or(0) as i64
                } else {
                    reloc.addend()
                };
                let target = match reloc.target() {
                    RelocationTarget::Symbol(index) => match file.symbol_by_index(index) {
                        Ok(symbol) => match symbol.section() {
                            SymbolSection::Section(sec) => Some((sec.0, symbol.address().wrapping_add(addend as u64))),
                            _ => None,
                        },
                        Err(_) => None,
                    },
                    RelocationTarget::Section(sec) => Some((sec.0, addend as u64)),
                    _ => None,
                };
                // A symbol's section index comes from the file: check it.
                let target = target.filter(|(sec, _)| sections.contains_key(sec));
                targets.push((name.clone(), target, format!("relocation at +{offset:#x}")));
            }
            for (r_type, n) in wrong_types {
                problems.push(format!("{name}: {n} relocations of type {r_type}, want {record_reloc_name} ({record_reloc})"));
            }
            let expected = data.len() / slot;
            if count != expected {
                problems.push(format!("{name}: {expected} slots but {count} relocations"));
            }
        } else {
            for i in 0..data.len() / slot {
                count += 1;
                let at = section.address().wrapping_add((slot * i) as u64);
                let value = match dynamic.get(&at) {
                    Some(Some(addend)) => *addend as u64,
                    _ => read_slot(data, (slot * i) as u64, slot, big_endian).unwrap_or(0),
                };
                let target = sections
                    .iter()
                    .find(|(_, s)| {
                        s.address != 0 && s.address <= value && value - s.address < s.data.len() as u64
                    })
                    .map(|(index, s)| (*index, value - s.address));
                targets.push((name.clone(), target, format!("address {value:#x}")));
            }
        }
        record_sections.push(RecordSection {
            name,
            flags: flags.clone(),
            records: count,
            link_order: sh_flags & u64::from(elf::SHF_LINK_ORDER) != 0,
        });
        let awo = u64::from(elf::SHF_ALLOC | elf::SHF_WRITE | elf::SHF_LINK_ORDER);
        if relocatable && sh_flags & awo != awo {
            problems.push(format!("{RECORD_SECTION} section {} has flags `{flags}`, not `awo`", section.index().0));
        }
    }

    // Functions: defined STT_FUNC symbols, aliases at one address merged.
    let mut by_location: BTreeMap<Target, (String, u64, bool)> = BTreeMap::new();
    for symbol in file.symbols() {
        let SymbolFlags::Elf { st_info, .. } = symbol.flags() else { continue };
        if st_info & 0xf != elf::STT_FUNC || !symbol.is_definition() {
            continue;
        }
        let SymbolSection::Section(SectionIndex(sec)) = symbol.section() else { continue };
        // The symbol's section index comes from the file: check it.
        let Some(section) = sections.get(&sec) else { continue };
        let offset = symbol.address().wrapping_sub(section.address);
        let name = symbol.name().unwrap_or("?").to_string();
        let global = symbol.is_global();
        let entry = by_location.entry((sec, offset)).or_insert((name.clone(), symbol.size(), global));
        if global && !entry.2 {
            *entry = (name, symbol.size().max(entry.1), true);
        }
    }

    // Records by where they point, so each function looks only at those
    // within its reach instead of at every record of the file.
    let mut by_target: BTreeMap<Target, Vec<usize>> = BTreeMap::new();
    for (i, (_, target, _)) in targets.iter().enumerate() {
        if let Some(at) = target {
            by_target.entry(*at).or_default().push(i);
        }
    }
    let reach = MAX_NOPS * arch.max_nop_len();
    let mut functions = Vec::new();
    // Which function claimed each record.
    let mut owner: Vec<Option<usize>> = vec![None; targets.len()];
    for (&(sec, offset), (name, size, _)) in &by_location {
        let section = &sections[&sec];
        let data = section.data;
        let mut f = Function {
            name: name.clone(),
            section: section.name.clone(),
            address: section.address.wrapping_add(offset),
            prefix_nops: 0,
            entry_nops: 0,
            landing_pad: None,
            records: 0,
            record_offset: None,
            site_alignment: None,
            pad: String::new(),
            problems: Vec::new(),
        };
        let len = data.len() as u64;
        let end = if *size > 0 { offset.saturating_add(*size) } else { len };
        if offset > len || end > len {
            // A function in a NOBITS section or past its data: nothing to read.
            f.problems.push("no code bytes in the file".to_string());
            functions.push(f);
            continue;
        }
        let code = &data[offset as usize..end as usize];
        let first = decode::decode(arch, code);
        let pad_len = match first.kind {
            Kind::LandingPad(name) => {
                f.landing_pad = Some(name);
                first.len
            }
            _ => 0,
        };
        let (entry_nops, entry_bytes) = count_nops(arch, &code[pad_len..]);
        f.entry_nops = entry_nops;
        // Records pointing into this function's reach: before the symbol
        // (prefix) or at the symbol / after its landing pad.
        let pad_start_without_prefix = offset + pad_len as u64;
        let mut prefix: Option<(u64, u64)> = None;
        // In the records' own order, as the first function to claim one keeps it.
        let mut candidates: Vec<usize> = by_target
            .range((sec, offset.saturating_sub(reach))..=(sec, pad_start_without_prefix))
            .flat_map(|(_, indices)| indices.iter().copied())
            .collect();
        candidates.sort_unstable();
        for i in candidates {
            let Some((_, toff)) = targets[i].1 else { continue };
            if owner[i].is_some() {
                continue;
            }
            let claimed = if toff == pad_start_without_prefix {
                prefix.get_or_insert((0, 0));
                true
            } else if toff < offset {
                // Ours only if everything from there to the symbol is nops;
                // otherwise it points into an earlier function.
                match prefix_nops(arch, &data[toff as usize..offset as usize]) {
                    Some(Prefix::Ones(n)) => {
                        prefix = Some((n, offset - toff));
                        true
                    }
                    Some(Prefix::NotOnes) => {
                        f.problems.push(format!(
                            "the {} bytes before the symbol that its record covers are nops but not single-byte 0x90s ({}): \
                             the kernel's x86 call padding refuses them",
                            offset - toff,
                            hex(&data[toff as usize..offset as usize])
                        ));
                        prefix = Some((0, 0));
                        true
                    }
                    None => false,
                }
            } else if toff == offset && pad_len > 0 {
                f.problems.push(format!("record points at the landing pad (`{}`), not after it", f.landing_pad.unwrap_or("?")));
                true
            } else {
                false
            };
            if claimed {
                owner[i] = Some(functions.len());
                f.records += 1;
                if f.record_offset.is_none() {
                    f.record_offset = Some(toff.wrapping_sub(offset) as i64);
                    f.site_alignment = Some(site_alignment(relocatable, section, toff));
                }
            }
        }
        let prefix_bytes = match prefix {
            Some((n, bytes)) => {
                f.prefix_nops = n;
                bytes
            }
            None => {
                let (n, bytes) = nops_before(arch, &data[..offset as usize]);
                f.prefix_nops = n;
                bytes
            }
        };
        let pad_from = (offset - prefix_bytes) as usize;
        let pad_to = offset as usize + pad_len + entry_bytes;
        f.pad = hex(&data[pad_from..pad_to]);
        functions.push(f);
    }

    let mut orphans = Vec::new();
    let mut sites = Vec::new();
    for (i, (record_section, target, how)) in targets.iter().enumerate() {
        let location = match target {
            Some((sec, off)) => {
                let section = &sections[sec];
                if relocatable {
                    format!("{}+{off:#x}", section.name)
                } else {
                    format!("{:#x}", section.address.wrapping_add(*off))
                }
            }
            None => format!("nothing in this file, {how}"),
        };
        let alignment = target.map_or(0, |(sec, off)| site_alignment(relocatable, &sections[&sec], off));
        sites.push(PatchSite { function: owner[i].map(|f| functions[f].name.clone()), location: location.clone(), alignment });
        if owner[i].is_some() {
            continue;
        }
        let points_at = match target {
            Some((sec, off)) => {
                let near = by_location
                    .range(..=(*sec, off.saturating_add(reach)))
                    .rev()
                    .find(|((s, _), _)| s == sec)
                    .map(|((_, o), (n, _, _))| format!(" (near {n} at {o:#x})"))
                    .unwrap_or_default();
                format!("{location}{near}, {how}")
            }
            None => location,
        };
        orphans.push(Orphan { record_section: record_section.clone(), points_at });
    }

    Ok(Report {
        path: path.to_string(),
        kind: kind.to_string(),
        arch,
        big_endian,
        functions,
        record_sections,
        sites,
        orphans,
        problems,
    })
}

/// A record slot's value: a pointer of `slot` (4 or 8) bytes in the file's
/// byte order.
fn read_slot(data: &[u8], offset: u64, slot: usize, big_endian: bool) -> Option<u64> {
    let offset = usize::try_from(offset).ok()?;
    let bytes = data.get(offset..offset.checked_add(slot)?)?;
    let mut value = [0u8; 8];
    Some(if big_endian {
        value[8 - slot..].copy_from_slice(bytes);
        u64::from_be_bytes(value)
    } else {
        value[..slot].copy_from_slice(bytes);
        u64::from_le_bytes(value)
    })
}

/// The largest power of two `offset` in `section` is guaranteed to be
/// aligned to: in a relocatable object the linker places the section only at
/// a multiple of its own alignment.
fn site_alignment(relocatable: bool, section: &Section<'_>, offset: u64) -> u64 {
    let lowest_bit = |v: u64| if v == 0 { 1 << 63 } else { 1 << v.trailing_zeros() };
    if relocatable {
        lowest_bit(offset).min(lowest_bit(section.align.max(1)))
    } else {
        lowest_bit(section.address.wrapping_add(offset))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flag_letters(sh_flags: u64) -> String {
    let mut s = String::new();
    for (flag, letter) in [(elf::SHF_ALLOC, 'a'), (elf::SHF_WRITE, 'w'), (elf::SHF_EXECINSTR, 'x'), (elf::SHF_LINK_ORDER, 'o')] {
        if sh_flags & u64::from(flag) != 0 {
            s.push(letter);
        }
    }
    s
}

/// Nops at the start of `code`, counted as the flag counts them (bytes on
/// x86, instructions elsewhere), and their length in bytes.
pub fn count_nops(arch: Arch, code: &[u8]) -> (u64, usize) {
    let (mut count, mut bytes) = (0, 0);
    while bytes < code.len() {
        let insn = decode::decode(arch, &code[bytes..]);
        if !insn.is_nop() {
            break;
        }
        count += if arch.counts_bytes() { insn.len as u64 } else { 1 };
        bytes += insn.len;
    }
    (count, bytes)
}

enum Prefix {
    /// Nothing but `n` one-unit nops (on x86, `0x90`s).
    Ones(u64),
    /// Nops, but on x86 not all single-byte ones.
    NotOnes,
}

/// What the bytes between a record and its symbol are, if only nops: LLVM
/// and GCC emit prefix nops one unit at a time, and the kernel's x86 call
/// padding accepts nothing but `0x90`s.
fn prefix_nops(arch: Arch, bytes: &[u8]) -> Option<Prefix> {
    let (mut count, mut at, mut ones) = (0, 0, true);
    while at < bytes.len() {
        let insn: Insn = decode::decode(arch, &bytes[at..]);
        if !insn.is_nop() {
            return None;
        }
        ones &= arch.prefix_nop_lens().contains(&insn.len);
        count += 1;
        at += insn.len;
    }
    Some(if ones { Prefix::Ones(count) } else { Prefix::NotOnes })
}

/// One-unit nops right before a function without a record, and their bytes
/// (informational: alignment padding can look the same).
fn nops_before(arch: Arch, before: &[u8]) -> (u64, u64) {
    let (mut count, mut end) = (0, before.len());
    'outer: while count < MAX_NOPS {
        for &len in arch.prefix_nop_lens() {
            if end >= len && decode::decode(arch, &before[end - len..end]) == (Insn { kind: Kind::Nop, len }) {
                count += 1;
                end -= len;
                continue 'outer;
            }
        }
        break;
    }
    (count, (before.len() - end) as u64)
}

impl Report {
    /// Functions that do not match `expect`, each with what is wrong; names
    /// containing any of `skip` are left out.
    pub fn offenders(&self, expect: Expect, skip: &[String]) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for f in &self.functions {
            if skipped(&f.name, skip) {
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

    /// Patch sites (records' targets) not aligned to `align`, as (function
    /// or `-`, what is wrong); sites of functions named like `skip` are left
    /// out. Also returns how many sites were checked.
    pub fn misaligned(&self, align: u64, skip: &[String]) -> (usize, Vec<(String, String)>) {
        let mut checked = 0;
        let mut out = Vec::new();
        for site in &self.sites {
            if site.function.as_deref().is_some_and(|name| skipped(name, skip)) {
                continue;
            }
            checked += 1;
            if site.alignment < align {
                let what = if site.alignment == 0 {
                    format!("patch site {} cannot be checked, want {align}-aligned", site.location)
                } else {
                    format!("patch site {} is {}-aligned, want {align}", site.location, site.alignment)
                };
                out.push((site.function.clone().unwrap_or_else(|| "-".to_string()), what));
            }
        }
        (checked, out)
    }
}

fn skipped(name: &str, skip: &[String]) -> bool {
    skip.iter().any(|s| name.contains(s.as_str()))
}

#[cfg(test)]
mod tests;
