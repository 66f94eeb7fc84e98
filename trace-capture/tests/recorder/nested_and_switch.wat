;; The outer loop's trace ends where the inner loop starts; a br_table becomes a guard
;; on the index it saw.
(module
  (func (export "main") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
    (loop $outer
      (local.set $j (i32.const 0))
      (loop $inner
        (block $b2 (block $b1 (block $b0
          (br_table $b0 $b1 $b2 (i32.rem_u (local.get $j) (i32.const 3))))
          (local.set $acc (i32.add (local.get $acc) (i32.const 1))) (br $b2))
          (local.set $acc (i32.shl (local.get $acc) (i32.const 1))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $inner (i32.lt_u (local.get $j) (i32.const 5))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))
