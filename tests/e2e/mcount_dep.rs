// The upstream crate of the mcount test: small functions other crates inline, one
// only under LTO (`small`), one everywhere (`small_inline`).
#![crate_type = "rlib"]

pub fn small(x: u32) -> u32 {
    x.wrapping_mul(2654435761) ^ (x >> 7)
}

#[inline]
pub fn small_inline(x: u32) -> u32 {
    x.wrapping_mul(40503) ^ (x >> 3)
}
