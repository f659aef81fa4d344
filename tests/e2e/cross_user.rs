// The downstream crate: instantiates and calls what cross_dep offers.
#![crate_type = "rlib"]
#![feature(bench_black_box)]

#[inline(never)]
pub fn user(x: u32) -> u32 {
    // `#[inline]` functions are code-generated here only where they are not inlined.
    let f: fn(u32) -> u32 = cross_dep::dep_inline;
    cross_dep::dep_generic(x)
        + cross_dep::dep_plain(x)
        + core::hint::black_box(f)(x)
        + cross_dep::dep_attr_generic(x)
}
