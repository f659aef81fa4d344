// Call-heavy microbenchmark: a recursive walk of a complete binary tree, one
// non-inlined call per node. Prints the number of calls so that instructions
// per call can be computed from callgrind's total.
#![feature(bench_black_box)]

use std::hint::black_box;

static mut CALLS: u64 = 0;

#[inline(never)]
#[no_mangle]
pub extern "C" fn walk(depth: u32, seed: u64) -> u64 {
    unsafe { CALLS += 1 };
    if depth == 0 {
        return seed & 0xff;
    }
    // Subtraction, not a commutative operator: LLVM would otherwise turn one of
    // the two calls into a loop (accumulator tail-recursion elimination), and
    // half of the counted calls would not enter the function.
    walk(depth - 1, seed.wrapping_mul(6364136223846793005).wrapping_add(1))
        .wrapping_sub(walk(depth - 1, seed.rotate_left(7)))
}

fn main() {
    let depth = black_box(20);
    let mut sum = 0;
    for round in 0..4 {
        sum ^= walk(depth, round);
    }
    println!("calls={} sum={sum}", unsafe { CALLS });
}
