(module
  (type (;0;) (func (param i32) (result i32)))
  (import "guest" "memory" (memory (;0;) 1 4))
  (import "kiln" "frame" (memory (;1;) 1))
  (export "trace0" (func $trace0.naive))
  (func $trace0.naive (;0;) (type 0) (param $frame i32) (result i32)
    (local f32 f64 f32 i32 i32)
    local.get $frame
    i64.load 1
    i32.wrap_i64
    f32.reinterpret_i32
    local.set 1
    local.get $frame
    i64.load 1 offset=8
    f64.reinterpret_i64
    local.set 2
    local.get 1
    f32.neg
    local.set 3
    local.get 2
    i32.trunc_f64_s
    local.set 4
    local.get 4
    i32.eqz
    local.set 5
    local.get 5
    if ;; label = @1
      local.get $frame
      local.get 3
      i32.reinterpret_f32
      i64.extend_i32_u
      i64.store 1
      local.get $frame
      i64.const -1
      i64.store 1 offset=8
      local.get $frame
      i32.const 8
      i32.sub
      i64.const 0
      i64.store 1
      i32.const 0
      return
    end
    local.get $frame
    local.get 3
    i32.reinterpret_f32
    i64.extend_i32_u
    i64.store 1
    local.get $frame
    local.get 2
    i64.reinterpret_f64
    i64.store 1 offset=8
    local.get $frame
    local.get 4
    i64.extend_i32_u
    i64.store 1 offset=16
    local.get $frame
    i64.const 4886718345
    i64.store 1 offset=24
    local.get $frame
    i32.const 8
    i32.sub
    i64.const 0
    i64.store 1
    i32.const 2
    return
  )
)
