#!/bin/sh
# Regenerates pfe-check's real-compiler test objects from pads.c (and
# pads-ilp32.ll, the same functions as LLVM IR for aarch64_be ILP32): the
# exact commands below, with Debian 12's clang-14, llc-14, ld.lld-14, gcc and
# aarch64-linux-gnu-gcc. Each line of MANIFEST says what its flags promise:
#   file  expect  align  misaligned  [skip]
# `expect` is the -fpatchable-function-entry shape every function must have,
# `align` an alignment every patch site must have (-falign-functions was
# given) and `misaligned` one some site must lack (it was not), `skip` names
# functions the compiler makes without a pad: the tests check those
# properties, not bytes. A missing compiler skips its lines.
#
#   sh make.sh [OUT]    (default: this directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
cd "$here"   # relative source path: the objects name `pads.c`, not a checkout
manifest="$out/MANIFEST"
: > "$manifest"

# obj NAME EXPECT ALIGN MISALIGNED COMPILER ARGS... : compile pads.c
obj() {
    name=$1 expect=$2 align=$3 misaligned=$4 cc=$5
    shift 5
    if ! command -v "$cc" > /dev/null; then
        echo "make.sh: no $cc, skipping $name" >&2
        return 0
    fi
    "$cc" "$@" -c -o "$out/$name" pads.c
    echo "$name $expect $align $misaligned" >> "$manifest"
}

# ir NAME EXPECT ALIGN MISALIGNED LLC-ARGS... : compile pads-ilp32.ll with llc-14
ir() {
    name=$1 expect=$2 align=$3 misaligned=$4
    shift 4
    if ! command -v llc-14 > /dev/null; then
        echo "make.sh: no llc-14, skipping $name" >&2
        return 0
    fi
    llc-14 -O2 "$@" -filetype=obj -o "$out/$name" pads-ilp32.ll
    echo "$name $expect $align $misaligned" >> "$manifest"
}

# skip NAME FUNCTION : FUNCTION (a substring) of object NAME is not padded
skip() {
    sed -i "s/^$1 .*/& $2/" "$manifest"
}

# exe NAME FROM LLD-ARGS... : link an object made above with ld.lld-14
exe() {
    name=$1 from=$2
    shift 2
    if ! command -v ld.lld-14 > /dev/null || ! grep -q "^$from " "$manifest"; then
        echo "make.sh: no ld.lld-14 or no $from, skipping $name" >&2
        return 0
    fi
    ld.lld-14 "$@" -o "$out/$name" "$out/$from"
    grep "^$from " "$manifest" | sed "s/^$from /$name /" >> "$manifest"
}

c="clang-14 -O2"
# x86_64: the kernel's call padding, 16 x 0x90 before a 16-aligned symbol;
# at -Os only -falign-functions keeps the patch sites aligned.
obj clang-x86_64-16-16-a16.o         16,16 16 -  $c --target=x86_64-linux-gnu -fpatchable-function-entry=16,16 -falign-functions=16
obj clang-x86_64-16-16-a16-fs.o      16,16 16 -  $c --target=x86_64-linux-gnu -fpatchable-function-entry=16,16 -falign-functions=16 -ffunction-sections
obj clang-x86_64-16-16-Os.o          16,16 -  16 $c --target=x86_64-linux-gnu -fpatchable-function-entry=16,16 -Os
obj clang-x86_64-16-16-Os-a16.o      16,16 16 -  $c --target=x86_64-linux-gnu -fpatchable-function-entry=16,16 -Os -falign-functions=16
obj clang-x86_64-5-3-ibt.o           5,3   -  -  $c --target=x86_64-linux-gnu -fpatchable-function-entry=5,3 -fcf-protection=branch
# i686 and x32: ELF32, 4-byte records (R_386_32 in .rel, R_X86_64_32 in .rela).
obj clang-i686-16-16-a16.o           16,16 16 -  $c --target=i686-linux-gnu -fpatchable-function-entry=16,16 -falign-functions=16
obj clang-i686-5-3.o                 5,3   -  -  $c --target=i686-linux-gnu -fpatchable-function-entry=5,3
obj clang-x32-16-16-a16.o            16,16 16 -  $c --target=x86_64-linux-gnux32 -fpatchable-function-entry=16,16 -falign-functions=16
obj clang-x32-5-3-ibt.o              5,3   -  -  $c --target=x86_64-linux-gnux32 -fpatchable-function-entry=5,3 -fcf-protection=branch
# aarch64: ftrace with call ops (4,2) needs 8-aligned patch sites.
obj clang-aarch64-4-2-a8.o           4,2   8  -  $c --target=aarch64-linux-gnu -fpatchable-function-entry=4,2 -falign-functions=8
obj clang-aarch64-4-2.o              4,2   -  8  $c --target=aarch64-linux-gnu -fpatchable-function-entry=4,2
obj clang-aarch64-2-bti.o            2     4  -  $c --target=aarch64-linux-gnu -fpatchable-function-entry=2 -mbranch-protection=bti
# aarch64_be: big-endian data (records, relocations, headers), little-endian
# instructions (nop is 1f 20 03 d5 here too). ELF64 from clang-14; ELF32
# (ILP32, R_AARCH64_P32_ABS32 records) from llc-14, clang-14 having no
# ILP32 front end.
obj clang-aarch64_be-3-1.o           3,1   4  -  $c --target=aarch64_be-linux-gnu -fpatchable-function-entry=3,1
ir  llc-aarch64_be-ilp32-3-1.o       3,1   4  -  -mtriple=aarch64_be-unknown-linux-gnu_ilp32
# riscv: 2-byte c.nop with the C extension, 4-byte nop without.
obj clang-riscv32c-4-a4.o            4     4  -  $c --target=riscv32-unknown-elf -march=rv32imac -fpatchable-function-entry=4 -falign-functions=4
obj clang-riscv32c-4-2.o             4,2   -  4  $c --target=riscv32-unknown-elf -march=rv32imac -fpatchable-function-entry=4,2
obj clang-riscv32-3-1.o              3,1   4  -  $c --target=riscv32-unknown-elf -march=rv32ima -fpatchable-function-entry=3,1
obj clang-riscv64c-4-a4.o            4     4  -  $c --target=riscv64-unknown-linux-gnu -march=rv64gc -fpatchable-function-entry=4 -falign-functions=4
obj clang-riscv64c-4-2.o             4,2   -  4  $c --target=riscv64-unknown-linux-gnu -march=rv64gc -fpatchable-function-entry=4,2
obj clang-riscv64-3-1.o              3,1   4  -  $c --target=riscv64-unknown-linux-gnu -march=rv64g -fpatchable-function-entry=3,1
# GCC: its own records (pointing at the first prefix nop) and section flags.
obj gcc-x86_64-16-16-a16.o           16,16 16 -  gcc -O2 -fpatchable-function-entry=16,16 -falign-functions=16
obj gcc-i686-5-3.o                   5,3   -  -  gcc -O2 -m32 -fpatchable-function-entry=5,3
skip gcc-i686-5-3.o __x86.get_pc_thunk   # GCC's PIC thunk, never padded
obj gcc-aarch64-4-2-a8.o             4,2   8  -  aarch64-linux-gnu-gcc -O2 -fpatchable-function-entry=4,2 -falign-functions=8
obj gcc-aarch64-2-bti.o              2     4  -  aarch64-linux-gnu-gcc -O2 -fpatchable-function-entry=2 -mbranch-protection=bti
obj gcc-aarch64_be-3-1.o             3,1   4  -  aarch64-linux-gnu-gcc -O2 -mbig-endian -fpatchable-function-entry=3,1

# Executables: records are pointers (static) or RELATIVE relocations (PIE;
# REL with the value in place on i686, RELA elsewhere), big-endian ones on
# aarch64_be (ld.lld-14 links no ILP32: it knows no R_AARCH64_P32_*).
exe lld-x86_64-16-16-a16-static      clang-x86_64-16-16-a16.o -static
exe lld-x86_64-16-16-a16-pie         clang-x86_64-16-16-a16.o -pie
exe lld-i686-16-16-a16-pie           clang-i686-16-16-a16.o -pie
exe lld-x32-16-16-a16-static         clang-x32-16-16-a16.o -static
exe lld-aarch64-4-2-a8-pie           clang-aarch64-4-2-a8.o -pie
exe lld-aarch64_be-3-1-static        clang-aarch64_be-3-1.o -static
exe lld-aarch64_be-3-1-pie           clang-aarch64_be-3-1.o -pie
exe lld-riscv32c-4-a4-static         clang-riscv32c-4-a4.o -static
exe lld-riscv64c-4-a4-pie            clang-riscv64c-4-a4.o -pie
