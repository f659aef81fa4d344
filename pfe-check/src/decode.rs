//! The one answer to "is this a nop?" for every architecture pfe-check reads:
//! LLVM 14's own disassembler (Debian's `libLLVM-14`, the LLVM that rustc-pfe
//! and clang-14 emit the pads with), reached through its C API
//! (`llvm-c/Disassembler.h`, bound by `llvm-sys`). An instruction is a nop
//! when LLVM prints it as `nop` (x86 in Intel syntax, where every multi-byte
//! nop is `nop` with operands; AArch64 `nop`; RISC-V `nop` and `c.nop`, both
//! printed `nop`), and a landing pad when LLVM prints `endbr64`, `endbr32` or
//! `bti`. Nothing else in pfe-check looks at instruction bytes.

use crate::Arch;
use llvm_sys::disassembler::{
    LLVMCreateDisasmCPUFeatures, LLVMDisasmContextRef, LLVMDisasmDispose, LLVMDisasmInstruction, LLVMSetDisasmOptions,
    LLVMDisassembler_Option_AsmPrinterVariant,
};
use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::Once;

/// What one instruction is, as far as a pad is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Nop,
    /// `endbr64`, `endbr32`, `bti`, `bti c`, `bti j`, `bti jc`.
    LandingPad(&'static str),
    /// Any other instruction.
    Other,
    /// Bytes LLVM cannot decode (or too few of them).
    Invalid,
}

/// One decoded instruction: its kind and its length in bytes (0 when invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub kind: Kind,
    pub len: usize,
}

impl Insn {
    pub fn is_nop(self) -> bool {
        self.kind == Kind::Nop
    }
}

/// Decodes the instruction at the start of `code`.
pub fn decode(arch: Arch, code: &[u8]) -> Insn {
    DISASSEMBLERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let slot = &mut cache[arch as usize];
        if slot.is_none() {
            *slot = Some(Disassembler::new(arch));
        }
        slot.as_ref().expect("created above").decode(code)
    })
}

// Disassembler contexts are not thread-safe; each thread keeps its own, one
// per architecture, made on first use (making one costs far more than
// decoding an instruction).
thread_local! {
    static DISASSEMBLERS: RefCell<[Option<Disassembler>; Arch::ALL.len()]> = const { RefCell::new([None, None, None, None, None, None, None]) };
}

struct Disassembler {
    context: LLVMDisasmContextRef,
}

impl Disassembler {
    fn new(arch: Arch) -> Self {
        init_targets();
        let (triple, features): (&CStr, &CStr) = match arch {
            Arch::X86 => (c"i686-linux-gnu", c""),
            Arch::X32 => (c"x86_64-linux-gnux32", c""),
            Arch::X86_64 => (c"x86_64-linux-gnu", c""),
            // `bti` is printed as `hint #34` unless the feature is on.
            // AArch64 instructions are little-endian in memory on aarch64_be
            // too (only data follows the byte order), and ILP32 changes
            // pointers, not instructions: one decoder reads them all.
            Arch::Aarch64 | Arch::Aarch64Ilp32 => (c"aarch64-linux-gnu", c"+bti"),
            // Compressed instructions (`c.nop`) decode only with `+c`; it
            // changes nothing for objects without them.
            Arch::Riscv32 => (c"riscv32-unknown-elf", c"+c"),
            Arch::Riscv64 => (c"riscv64-unknown-linux-gnu", c"+c"),
        };
        // SAFETY: valid NUL-terminated strings; no callbacks, no user data.
        let context =
            unsafe { LLVMCreateDisasmCPUFeatures(triple.as_ptr(), c"".as_ptr(), features.as_ptr(), std::ptr::null_mut(), 0, None, None) };
        // The targets are part of Debian's libLLVM-14, initialized above.
        assert!(!context.is_null(), "LLVM 14 has no disassembler for {triple:?}");
        if matches!(arch, Arch::X86 | Arch::X32 | Arch::X86_64) {
            // Intel syntax: every nop is `nop` (AT&T says `nopw`, `nopl`).
            // SAFETY: a live context.
            unsafe { LLVMSetDisasmOptions(context, LLVMDisassembler_Option_AsmPrinterVariant) };
        }
        Disassembler { context }
    }

    fn decode(&self, code: &[u8]) -> Insn {
        let mut text = [0 as c_char; 128];
        // SAFETY: `code` is valid for `code.len()` bytes and LLVM only reads
        // it; `text` is writable for its length and LLVM NUL-terminates it.
        let len = unsafe {
            LLVMDisasmInstruction(
                self.context,
                code.as_ptr() as *mut u8,
                code.len() as u64,
                0,
                text.as_mut_ptr(),
                text.len(),
            )
        };
        if len == 0 || len > code.len() {
            return Insn { kind: Kind::Invalid, len: 0 };
        }
        // SAFETY: NUL-terminated by LLVM within the buffer.
        let text = unsafe { CStr::from_ptr(text.as_ptr()) }.to_string_lossy();
        Insn { kind: classify(&text), len }
    }
}

impl Drop for Disassembler {
    fn drop(&mut self) {
        // SAFETY: made by LLVMCreateDisasmCPUFeatures, disposed once.
        unsafe { LLVMDisasmDispose(self.context) };
    }
}

/// What LLVM's printed instruction says: the mnemonic, then operands.
fn classify(text: &str) -> Kind {
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("nop"), _, _) => Kind::Nop,
        (Some("endbr64"), None, _) => Kind::LandingPad("endbr64"),
        (Some("endbr32"), None, _) => Kind::LandingPad("endbr32"),
        (Some("bti"), None, _) => Kind::LandingPad("bti"),
        (Some("bti"), Some("c"), None) => Kind::LandingPad("bti c"),
        (Some("bti"), Some("j"), None) => Kind::LandingPad("bti j"),
        (Some("bti"), Some("jc"), None) => Kind::LandingPad("bti jc"),
        _ => Kind::Other,
    }
}

fn init_targets() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use llvm_sys::target::*;
        // SAFETY: LLVM's registration functions, run once.
        unsafe {
            LLVMInitializeX86TargetInfo();
            LLVMInitializeX86TargetMC();
            LLVMInitializeX86Disassembler();
            LLVMInitializeAArch64TargetInfo();
            LLVMInitializeAArch64TargetMC();
            LLVMInitializeAArch64Disassembler();
            LLVMInitializeRISCVTargetInfo();
            LLVMInitializeRISCVTargetMC();
            LLVMInitializeRISCVDisassembler();
        }
    });
}
