;; Loads and stores keep their order; a global write is an effect too.
(module
  (memory 1)
  (global $count (mut i32) (i32.const 0))
  (func (export "main") (param $n i32) (result i32) (local $p i32)
    (loop $l
      (i32.store offset=8 (local.get $p)
        (i32.add (i32.load offset=4 (local.get $p)) (i32.const 7)))
      (global.set $count (i32.add (global.get $count) (i32.const 1)))
      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 4)) (i32.const 1020)))
      (br_if $l (i32.lt_u (global.get $count) (local.get $n))))
    (i32.load (i32.const 8))))
