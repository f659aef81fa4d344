; pads.c's functions as LLVM IR, for llc-14 on aarch64_be ILP32 (see make.sh):
; clang-14 cannot compile C for aarch64_be-linux-gnu_ilp32 (its data layout
; lacks ILP32's 32-bit pointers and the backend refuses it), so this is
; written by hand, with the attributes rustc-pfe's
; -Z patchable-function-entry=3,1 gives every function: "patchable-function-
; entry" counts the nops after the symbol, "patchable-function-prefix" those
; before it. The data layout is rustc's aarch64_be-unknown-linux-gnu_ilp32.
target datalayout = "E-m:e-p:32:32-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128"
target triple = "aarch64_be-unknown-linux-gnu_ilp32"

@counter = global i32 0, align 4

define i32 @leaf(i32 %x) #0 {
  %m = mul nsw i32 %x, 3
  %r = add nsw i32 %m, 1
  ret i32 %r
}

define i32 @caller(i32 %x) #0 {
  %a = call i32 @leaf(i32 %x)
  %y = add nsw i32 %x, 1
  %b = call i32 @leaf(i32 %y)
  %r = add nsw i32 %a, %b
  ret i32 %r
}

define void @store(i32 %x) #0 {
  store i32 %x, i32* @counter, align 4
  ret void
}

define i32 @sum(i32* %p, i32 %n) #0 {
entry:
  %empty = icmp slt i32 %n, 1
  br i1 %empty, label %done, label %loop

loop:
  %i = phi i32 [ 0, %entry ], [ %next, %loop ]
  %s = phi i32 [ 0, %entry ], [ %s.next, %loop ]
  %at = getelementptr inbounds i32, i32* %p, i32 %i
  %v = load i32, i32* %at, align 4
  %next = add nuw nsw i32 %i, 1
  %w = mul nsw i32 %v, %next
  %s.next = add nsw i32 %w, %s
  %end = icmp eq i32 %next, %n
  br i1 %end, label %done, label %loop

done:
  %r = phi i32 [ 0, %entry ], [ %s.next, %loop ]
  ret i32 %r
}

define i32 @_start() #0 {
  %c = load i32, i32* @counter, align 4
  %r = call i32 @caller(i32 %c)
  ret i32 %r
}

attributes #0 = { nounwind "patchable-function-entry"="2" "patchable-function-prefix"="1" }
