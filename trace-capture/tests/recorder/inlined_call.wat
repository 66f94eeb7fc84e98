;; A straight-line helper is inlined; a helper that branches cuts the trace at its call.
(module
  (func $mix (param i32 i32) (result i32)
    (i32.xor (i32.mul (local.get 0) (i32.const 31)) (local.get 1)))
  (func $clamp (param i32) (result i32)
    (if (result i32) (i32.gt_u (local.get 0) (i32.const 1000))
      (then (i32.const 1000)) (else (local.get 0))))
  (func (export "main") (param $n i32) (result i32) (local $i i32) (local $h i32)
    (loop $l
      (local.set $h (call $mix (local.get $h) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (loop $m
      (local.set $h (call $clamp (i32.add (local.get $h) (local.get $i))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $m (local.get $i)))
    (local.get $h)))
