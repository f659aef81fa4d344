// The Rust side of the differential test: the same empty function as entry.c.
#![no_std]

#[no_mangle]
pub extern "C" fn f() {}
