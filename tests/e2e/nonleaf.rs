// The Rust side of the non-leaf differential test: the same function as nonleaf.c,
// which calls out twice, so it saves the return address (signed with pac-ret).
// `no_core`, so that it compiles for targets the toolchain has no `core` for.
#![feature(no_core, lang_items)]
#![no_core]

#[lang = "sized"]
trait Sized {}
#[lang = "copy"]
trait Copy {}
impl Copy for i32 {}

extern "C" {
    fn g(x: i32) -> i32;
}

#[no_mangle]
pub unsafe extern "C" fn f(x: i32) -> i32 {
    g(g(x))
}
