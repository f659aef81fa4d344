// The mcount test: `outer` inlines small functions twice each, from its own crate
// (`helpers::small`, in another codegen unit, so inlined by ThinLTO) and from another
// crate (inlined everywhere, or only under LTO). However it is built, `outer` must
// call mcount exactly once: every inlined body is instrumented only where it ends up.
mod helpers {
    pub fn small(x: u32) -> u32 {
        x.rotate_left(5).wrapping_add(0x9e37_79b9)
    }
}

#[inline(never)]
#[no_mangle]
pub fn outer(a: u32, b: u32) -> u32 {
    helpers::small(a)
        ^ helpers::small(b)
        ^ mcount_dep::small(a)
        ^ mcount_dep::small(b)
        ^ mcount_dep::small_inline(a)
        ^ mcount_dep::small_inline(b)
}

fn main() {
    let n = std::env::args().count() as u32;
    std::process::exit((outer(n, n + 1) & 1) as i32);
}
