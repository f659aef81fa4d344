// The upstream crate of the cross-crate test: a generic, an #[inline] function, a plain
// one, and a generic carrying the attribute. `black_box` keeps LLVM from folding
// the instantiations away.
#![crate_type = "rlib"]
#![feature(bench_black_box, patchable_function_entry)]

#[inline(never)]
pub fn dep_generic<T: Copy>(t: T) -> T {
    core::hint::black_box(t)
}

#[inline]
pub fn dep_inline(x: u32) -> u32 {
    x.wrapping_mul(3)
}

#[inline(never)]
pub fn dep_plain(x: u32) -> u32 {
    x ^ 5
}

#[inline(never)]
#[patchable_function_entry(prefix_nops = 1, entry_nops = 1)]
pub fn dep_attr_generic<T: Copy>(t: T) -> T {
    core::hint::black_box(t)
}
