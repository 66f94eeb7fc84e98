;; Calls are inlined. A straight-line helper adds no guard. A helper that branches adds
;; guards whose exits leave inside the call (`in f1 s4 ret=12`: the callee, where its
;; frame starts, where its caller goes on), two calls deep too. A helper that loops cuts
;; the trace back to its call.
(module
  (func $mix (param i32 i32) (result i32)
    (i32.xor (i32.mul (local.get 0) (i32.const 31)) (local.get 1)))
  (func $clamp (param i32) (result i32)
    (if (result i32) (i32.gt_u (local.get 0) (i32.const 1000))
      (then (i32.const 1000)) (else (local.get 0))))
  (func $clamp_mix (param i32 i32) (result i32) (local i32)
    (local.set 2 (call $clamp (local.get 0)))
    (call $mix (local.get 2) (local.get 1)))
  (func $bits (param i32) (result i32) (local i32)
    (block $done
      (loop $count
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (i32.const 1)))
        (local.set 0 (i32.shr_u (local.get 0) (i32.const 1)))
        (br $count)))
    (local.get 1))
  (func (export "main") (param $n i32) (result i32) (local $i i32) (local $h i32)
    (loop $l
      (local.set $h (call $mix (local.get $h) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (loop $m
      (local.set $h (call $clamp (i32.add (local.get $h) (local.get $i))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $m (local.get $i)))
    (loop $k
      (local.set $h (call $clamp_mix (local.get $h) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $k (i32.lt_u (local.get $i) (local.get $n))))
    (loop $o
      (local.set $h (i32.add (local.get $h) (call $bits (local.get $i))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $o (local.get $i)))
    (local.get $h)))
