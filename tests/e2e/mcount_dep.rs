// The upstream crate of the mcount test: a small function other crates inline.
#![crate_type = "rlib"]

#[inline]
pub fn small(x: u32) -> u32 {
    x.wrapping_mul(2654435761) ^ (x >> 7)
}
