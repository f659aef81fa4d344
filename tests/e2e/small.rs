// A small crate with the kinds of functions rustc emits: free functions,
// `extern "C"`, methods, a closure, a generic instantiated in the crate.

#[no_mangle]
pub extern "C" fn pfe_add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

#[inline(never)]
fn generic_max<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if a > b { a } else { b }
}

pub struct Counter {
    n: u32,
}

impl Counter {
    #[inline(never)]
    pub fn bump(&mut self, by: u32) -> u32 {
        self.n = self.n.wrapping_add(by);
        self.n
    }
}

#[inline(never)]
pub fn apply(f: &dyn Fn(u32) -> u32, x: u32) -> u32 {
    f(x)
}

pub fn uses_all(x: u32) -> u32 {
    let k = x ^ 0x5a;
    let closure = move |y: u32| y.rotate_left(k);
    apply(&closure, generic_max(x, 7)) + generic_max(1u8, 2) as u32
}
