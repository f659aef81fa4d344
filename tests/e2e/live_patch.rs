// Walks this program's own `__patchable_function_entries` records, checks that each
// points at nops, and live-patches `target`'s entry nops into a branch to
// `replacement`, the way ftrace and live patching use them. Prints one line:
// `records=N nops=N before=X after=Y`.
#![feature(bench_black_box, linkage)]

use std::hint::black_box;

extern "C" {
    // Weak: without padding the linker defines neither, and both are null.
    #[linkage = "extern_weak"]
    static __start___patchable_function_entries: *const usize;
    #[linkage = "extern_weak"]
    static __stop___patchable_function_entries: *const usize;
    fn mprotect(addr: *mut u8, len: usize, prot: i32) -> i32;
    fn sysconf(name: i32) -> i64;
}

#[cfg(target_arch = "aarch64")]
extern "C" {
    fn __clear_cache(start: *mut u8, end: *mut u8);
}

#[inline(never)]
#[no_mangle]
pub extern "C" fn target() -> u32 {
    black_box(1)
}

#[inline(never)]
#[no_mangle]
pub extern "C" fn replacement() -> u32 {
    black_box(2)
}

/// The nops a record must point at: x86_64 `=5` is LLVM's 5-byte nop (`nopl
/// 8(%rax,%rax)`, as Clang emits it), aarch64 `=2`
/// two `nop` instructions.
#[cfg(target_arch = "x86_64")]
const PAD: &[u8] = &[0x0f, 0x1f, 0x44, 0x00, 0x08];
#[cfg(target_arch = "aarch64")]
const PAD: &[u8] = &[0x1f, 0x20, 0x03, 0xd5, 0x1f, 0x20, 0x03, 0xd5];

unsafe fn make_writable(at: *mut u8, len: usize) {
    const SC_PAGESIZE: i32 = 30;
    const RWX: i32 = 1 | 2 | 4;
    let page = sysconf(SC_PAGESIZE) as usize;
    let start = (at as usize) & !(page - 1);
    let end = at as usize + len;
    assert_eq!(mprotect(start as *mut u8, end - start, RWX), 0, "mprotect failed");
}

/// Replaces the pad at `at` with a branch to `to`.
#[cfg(target_arch = "x86_64")]
unsafe fn branch(at: *mut u8, to: usize) {
    let rel = (to as isize - (at as isize + 5)) as i32;
    let mut jmp = [0xe9u8, 0, 0, 0, 0];
    jmp[1..].copy_from_slice(&rel.to_le_bytes());
    std::ptr::copy_nonoverlapping(jmp.as_ptr(), at, 5);
}

#[cfg(target_arch = "aarch64")]
unsafe fn branch(at: *mut u8, to: usize) {
    let offset = (to as isize - at as isize) / 4;
    let b = 0x1400_0000u32 | (offset as u32 & 0x03ff_ffff);
    std::ptr::copy_nonoverlapping(b.to_le_bytes().as_ptr(), at, 4);
    __clear_cache(at, at.add(4));
}

fn main() {
    let call: extern "C" fn() -> u32 = black_box(target);
    let (start, stop) = unsafe {
        (__start___patchable_function_entries, __stop___patchable_function_entries)
    };
    let records: &[usize] = if start.is_null() {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(start, stop.offset_from(start) as usize) }
    };
    let nops = records
        .iter()
        .filter(|&&pad| unsafe { std::slice::from_raw_parts(pad as *const u8, PAD.len()) } == PAD)
        .count();
    let before = call();
    let pad = records.iter().copied().find(|&pad| pad == target as usize);
    if let Some(pad) = pad {
        unsafe {
            make_writable(pad as *mut u8, PAD.len());
            branch(pad as *mut u8, replacement as usize);
        }
    }
    let after = call();
    println!("records={} nops={} before={} after={}", records.len(), nops, before, after);
}
