// The mcount test: `small` (here) and `mcount_dep::small` (another crate) are
// inlined twice each into `outer`, which must still call mcount exactly once, at
// every optimization and LTO setting.
#[inline]
fn small(x: u32) -> u32 {
    x.rotate_left(5).wrapping_add(0x9e37_79b9)
}

#[inline(never)]
#[no_mangle]
pub fn outer(a: u32, b: u32) -> u32 {
    small(a) ^ small(b) ^ mcount_dep::small(a) ^ mcount_dep::small(b)
}

fn main() {
    let n = std::env::args().count() as u32;
    std::process::exit((outer(n, n + 1) & 1) as i32);
}
