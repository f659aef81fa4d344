// Two functions in their own sections: `keep_a` is called from C, `drop_b` from
// nowhere, so `--gc-sections` drops it, and its record must go with it.
#![no_std]

#[no_mangle]
pub extern "C" fn keep_a() -> i32 {
    42
}

#[no_mangle]
pub extern "C" fn drop_b() -> i32 {
    7
}
