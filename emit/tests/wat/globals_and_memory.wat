(module
  (type (;0;) (func (param i32) (result i32)))
  (import "guest" "memory" (memory (;0;) 1 4))
  (import "kiln" "frame" (memory (;1;) 1))
  (import "guest" "global2" (global (;0;) (mut i32)))
  (import "guest" "global5" (global (;1;) (mut i32)))
  (export "trace0" (func $trace0.naive))
  (func $trace0.naive (;0;) (type 0) (param $frame i32) (result i32)
    (local i64 i32 i32 i64 i32 i32 i32 i32)
    local.get $frame
    i64.load 1
    local.set 1
    loop ;; label = @1
      local.get 1
      i32.wrap_i64
      local.set 2
      global.get 0
      local.set 3
      local.get 2
      i32.load offset=16
      local.set 5
      local.get 5
      local.get 3
      i32.add
      local.set 6
      local.get 2
      i64.const 255
      i64.store8 offset=1
      local.get 6
      global.set 0
      i32.const 7
      global.set 1
      i32.const 1
      memory.grow
      local.set 7
      memory.size
      local.set 8
      local.get 8
      i32.eqz
      if ;; label = @2
        local.get $frame
        local.get 7
        i64.extend_i32_u
        i64.store 1
        local.get $frame
        i32.const 8
        i32.sub
        local.get 4
        i64.store 1
        i32.const 3
        return
      end
      local.get 6
      i64.extend_i32_u
      local.set 1
      local.get 4
      i64.const 1
      i64.add
      local.set 4
      br 0 (;@1;)
    end
    unreachable
  )
)
