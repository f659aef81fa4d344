// The end-to-end test of the functions rustc makes up rather than generates from
// MIR: the C `main` that calls this `main` and the allocator shim (`__rust_alloc`,
// ...) are padded and aligned like every other function of the crate.
fn main() {
    let r = std::panic::catch_unwind(|| if std::env::args().count() > 5 { panic!("x") } else { 3 });
    let v: Vec<u8> = Vec::with_capacity(r.unwrap_or(1));
    println!("{}", v.capacity());
}
