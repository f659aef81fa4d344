/* The same call-heavy walk as tree.rs, for clang-14 with the same padding. */
#include <stdint.h>
#include <stdio.h>

static uint64_t calls;

__attribute__((noinline)) uint64_t walk(uint32_t depth, uint64_t seed) {
    calls++;
    if (depth == 0)
        return seed & 0xff;
    /* Subtraction, as in tree.rs: no accumulator tail-recursion elimination. */
    return walk(depth - 1, seed * 6364136223846793005ull + 1) -
           walk(depth - 1, (seed << 7) | (seed >> 57));
}

int main(void) {
    volatile uint32_t depth = 20;
    uint64_t sum = 0;
    for (uint64_t round = 0; round < 4; round++)
        sum ^= walk(depth, round);
    printf("calls=%llu sum=%llu\n", (unsigned long long)calls, (unsigned long long)sum);
    return 0;
}
