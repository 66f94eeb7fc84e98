/*
 * bytecode_vm: a small stack-machine interpreter running five bytecode
 * programs, each checked against the same computation written in C.
 *
 * Hot loop: the interpreter's fetch/dispatch loop, a switch over ~26
 * opcodes that clang lowers to a wasm br_table, so nearly every VM
 * instruction is an indirect branch to a short handler that touches an
 * operand stack, a variable file or (for CALL/RET) a return stack. The
 * programs: a multiply/xor/shift mixing loop, iterative Fibonacci, Collatz
 * trajectory lengths, a sum of GCDs through a CALLed subroutine, and a
 * doubly recursive Fibonacci written with CALL/RET.
 *
 * Scale: loop trip counts grow linearly with it (one unit ~ 3 million
 * wasm instructions); at most 6000 so Collatz values stay below 2^32.
 */
#include "common.h"

#define DEFAULT_SCALE 64
#define MAX_SCALE 6000

enum {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_INC, OP_DECJNZ,
    OP_ADD, OP_SUB, OP_MUL, OP_MOD, OP_AND, OP_OR, OP_XOR, OP_SHL, OP_SHR,
    OP_LT, OP_EQ, OP_DUP, OP_DROP, OP_SWAP, OP_OVER,
    OP_JMP, OP_JZ, OP_JNZ, OP_CALL, OP_RET,
    OP_COUNT
};

/* ---- assembler -------------------------------------------------------- */

#define CODE_MAX 1024
#define LABEL_MAX 64
#define FIX_MAX 128

static int32_t code[CODE_MAX];
static int32_t ncode;
static int32_t label_pos[LABEL_MAX];
static int32_t nlabels;
static int32_t fix_at[FIX_MAX], fix_label[FIX_MAX];
static int32_t nfix;
static int asm_error;

static void emit(int32_t word) {
    if (ncode < CODE_MAX)
        code[ncode++] = word;
    else
        asm_error = 1;
}

static int32_t label(void) {
    if (nlabels == LABEL_MAX) {
        asm_error = 1;
        return 0;
    }
    label_pos[nlabels] = -1;
    return nlabels++;
}

static void bind(int32_t l) { label_pos[l] = ncode; }
/* Not inlined: keeps the assembler (which runs once) from bloating main. */
#define NOINLINE __attribute__((noinline))

NOINLINE static void op(int32_t o) { emit(o); }
NOINLINE static void op_i(int32_t o, int32_t imm) { emit(o); emit(imm); }

static void ref(int32_t l) {
    if (nfix == FIX_MAX) {
        asm_error = 1;
        return;
    }
    fix_at[nfix] = ncode;
    fix_label[nfix++] = l;
    emit(-1);
}

NOINLINE static void op_j(int32_t o, int32_t l) { emit(o); ref(l); }
NOINLINE static void op_vj(int32_t o, int32_t var, int32_t l) { emit(o); emit(var); ref(l); }

static int resolve(void) {
    for (int32_t i = 0; i < nfix; i++) {
        int32_t pos = label_pos[fix_label[i]];
        if (pos < 0)
            return 0;
        code[fix_at[i]] = pos;
    }
    return !asm_error;
}

/* ---- interpreter ------------------------------------------------------ */

#define STACK_MAX 256
#define RSTACK_MAX 64
#define NVARS 16

enum { VM_OK = 0, VM_STACK_OVERFLOW, VM_CALL_OVERFLOW, VM_RET_UNDERFLOW, VM_BAD_OPCODE };

static uint64_t vm_steps;

static int vm_run(int32_t entry, uint32_t vars[NVARS], uint32_t *result) {
    uint32_t stack[STACK_MAX];
    int32_t rstack[RSTACK_MAX];
    uint32_t sp = 0, rsp = 0, a, b;
    int32_t pc = entry;
    uint64_t steps = 0;
    for (;;) {
        steps++;
        switch (code[pc++]) {
        case OP_HALT:
            *result = sp ? stack[sp - 1] : 0;
            vm_steps += steps;
            return VM_OK;
        case OP_PUSH:
            if (sp == STACK_MAX)
                return VM_STACK_OVERFLOW;
            stack[sp++] = (uint32_t)code[pc++];
            break;
        case OP_LOAD:
            if (sp == STACK_MAX)
                return VM_STACK_OVERFLOW;
            stack[sp++] = vars[code[pc++] & (NVARS - 1)];
            break;
        case OP_STORE:
            vars[code[pc++] & (NVARS - 1)] = stack[--sp];
            break;
        case OP_INC:
            vars[code[pc++] & (NVARS - 1)]++;
            break;
        case OP_DECJNZ:
            if (--vars[code[pc] & (NVARS - 1)] != 0)
                pc = code[pc + 1];
            else
                pc += 2;
            break;
#define BINOP(NAME, EXPR)          \
        case NAME:                 \
            b = stack[--sp];       \
            a = stack[sp - 1];     \
            stack[sp - 1] = (EXPR); \
            break;
        BINOP(OP_ADD, a + b)
        BINOP(OP_SUB, a - b)
        BINOP(OP_MUL, a * b)
        BINOP(OP_MOD, b ? a % b : 0u)
        BINOP(OP_AND, a & b)
        BINOP(OP_OR, a | b)
        BINOP(OP_XOR, a ^ b)
        BINOP(OP_SHL, a << (b & 31u))
        BINOP(OP_SHR, a >> (b & 31u))
        BINOP(OP_LT, a < b ? 1u : 0u)
        BINOP(OP_EQ, a == b ? 1u : 0u)
#undef BINOP
        case OP_DUP:
            if (sp == STACK_MAX)
                return VM_STACK_OVERFLOW;
            stack[sp] = stack[sp - 1];
            sp++;
            break;
        case OP_DROP:
            sp--;
            break;
        case OP_SWAP:
            a = stack[sp - 1];
            stack[sp - 1] = stack[sp - 2];
            stack[sp - 2] = a;
            break;
        case OP_OVER:
            if (sp == STACK_MAX)
                return VM_STACK_OVERFLOW;
            stack[sp] = stack[sp - 2];
            sp++;
            break;
        case OP_JMP:
            pc = code[pc];
            break;
        case OP_JZ:
            pc = stack[--sp] == 0 ? code[pc] : pc + 1;
            break;
        case OP_JNZ:
            pc = stack[--sp] != 0 ? code[pc] : pc + 1;
            break;
        case OP_CALL:
            if (rsp == RSTACK_MAX)
                return VM_CALL_OVERFLOW;
            rstack[rsp++] = pc + 1;
            pc = code[pc];
            break;
        case OP_RET:
            if (rsp == 0)
                return VM_RET_UNDERFLOW;
            pc = rstack[--rsp];
            break;
        default:
            return VM_BAD_OPCODE;
        }
    }
}

/* ---- bytecode programs -------------------------------------------------
 * Each returns its entry point. v0 is the trip count set by the caller. */

/* acc = ((acc * 31) ^ i) + (acc >> 7), for i = n .. 1 */
static int32_t asm_mix(void) {
    int32_t entry = ncode, loop = label();
    op_i(OP_PUSH, 0); op_i(OP_STORE, 1);
    bind(loop);
    op_i(OP_LOAD, 1); op_i(OP_PUSH, 31); op(OP_MUL); op_i(OP_LOAD, 0); op(OP_XOR);
    op_i(OP_LOAD, 1); op_i(OP_PUSH, 7); op(OP_SHR); op(OP_ADD); op_i(OP_STORE, 1);
    op_vj(OP_DECJNZ, 0, loop);
    op_i(OP_LOAD, 1); op(OP_HALT);
    return entry;
}

static uint32_t c_mix(uint32_t n) {
    uint32_t acc = 0;
    for (uint32_t i = n; i != 0; i--)
        acc = ((acc * 31u) ^ i) + (acc >> 7);
    return acc;
}

/* Fibonacci mod 2^32, iteratively: n steps of (a, b) = (b, a + b). */
static int32_t asm_fib_iter(void) {
    int32_t entry = ncode, loop = label();
    op_i(OP_PUSH, 0); op_i(OP_STORE, 1); op_i(OP_PUSH, 1); op_i(OP_STORE, 2);
    bind(loop);
    op_i(OP_LOAD, 1); op_i(OP_LOAD, 2); op(OP_DUP); op_i(OP_STORE, 1); op(OP_ADD);
    op_i(OP_STORE, 2);
    op_vj(OP_DECJNZ, 0, loop);
    op_i(OP_LOAD, 1); op(OP_HALT);
    return entry;
}

static uint32_t c_fib_iter(uint32_t n) {
    uint32_t a = 0, b = 1;
    while (n--) {
        uint32_t t = a + b;
        a = b;
        b = t;
    }
    return a;
}

/* Collatz: for k = n .. 1 sum the trajectory lengths; v2/v3 = longest. */
static int32_t asm_collatz(void) {
    int32_t entry = ncode;
    int32_t outer = label(), inner = label(), even = label(), next = label();
    int32_t done = label(), nobest = label();
    op_i(OP_PUSH, 0); op_i(OP_STORE, 1);
    op_i(OP_PUSH, 0); op_i(OP_STORE, 2);
    op_i(OP_PUSH, 0); op_i(OP_STORE, 3);
    bind(outer);
    op_i(OP_LOAD, 0); op_i(OP_STORE, 4); op_i(OP_PUSH, 0); op_i(OP_STORE, 5);
    bind(inner);
    op_i(OP_LOAD, 4); op_i(OP_PUSH, 1); op(OP_EQ); op_j(OP_JNZ, done);
    op_i(OP_LOAD, 4); op_i(OP_PUSH, 1); op(OP_AND); op_j(OP_JZ, even);
    op_i(OP_LOAD, 4); op_i(OP_PUSH, 3); op(OP_MUL); op_i(OP_PUSH, 1); op(OP_ADD);
    op_i(OP_STORE, 4); op_j(OP_JMP, next);
    bind(even);
    op_i(OP_LOAD, 4); op_i(OP_PUSH, 1); op(OP_SHR); op_i(OP_STORE, 4);
    bind(next);
    op_i(OP_INC, 5); op_j(OP_JMP, inner);
    bind(done);
    op_i(OP_LOAD, 5); op_i(OP_LOAD, 1); op(OP_ADD); op_i(OP_STORE, 1);
    op_i(OP_LOAD, 2); op_i(OP_LOAD, 5); op(OP_LT); op_j(OP_JZ, nobest);
    op_i(OP_LOAD, 5); op_i(OP_STORE, 2); op_i(OP_LOAD, 0); op_i(OP_STORE, 3);
    bind(nobest);
    op_vj(OP_DECJNZ, 0, outer);
    op_i(OP_LOAD, 1); op(OP_HALT);
    return entry;
}

static uint32_t c_collatz(uint32_t n, uint32_t *best_len, uint32_t *best_k) {
    uint32_t total = 0, best = 0, bk = 0;
    for (uint32_t k = n; k != 0; k--) {
        uint32_t x = k, steps = 0;
        while (x != 1) {
            x = (x & 1u) ? 3u * x + 1u : x >> 1;
            steps++;
        }
        total += steps;
        if (best < steps) {
            best = steps;
            bk = k;
        }
    }
    *best_len = best;
    *best_k = bk;
    return total;
}

/* acc += gcd(((i * 7919) & 0xFFFF) | 1, i) for i = n .. 1, gcd as a subroutine. */
static int32_t asm_gcd_sum(void) {
    int32_t entry = ncode, loop = label(), gcd = label(), gloop = label(), gend = label();
    op_i(OP_PUSH, 0); op_i(OP_STORE, 1);
    bind(loop);
    op_i(OP_LOAD, 0); op_i(OP_PUSH, 7919); op(OP_MUL); op_i(OP_PUSH, 0xFFFF); op(OP_AND);
    op_i(OP_PUSH, 1); op(OP_OR);
    op_i(OP_LOAD, 0);
    op_j(OP_CALL, gcd);
    op_i(OP_LOAD, 1); op(OP_ADD); op_i(OP_STORE, 1);
    op_vj(OP_DECJNZ, 0, loop);
    op_i(OP_LOAD, 1); op(OP_HALT);
    /* gcd: [a b] -> [gcd(a, b)], Euclid's algorithm in v8/v9 */
    bind(gcd);
    op_i(OP_STORE, 9); op_i(OP_STORE, 8);
    bind(gloop);
    op_i(OP_LOAD, 9); op_j(OP_JZ, gend);
    op_i(OP_LOAD, 8); op_i(OP_LOAD, 9); op(OP_MOD);
    op_i(OP_LOAD, 9); op_i(OP_STORE, 8); op_i(OP_STORE, 9);
    op_j(OP_JMP, gloop);
    bind(gend);
    op_i(OP_LOAD, 8); op(OP_RET);
    return entry;
}

static uint32_t c_gcd(uint32_t a, uint32_t b) {
    while (b) {
        uint32_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

static uint32_t c_gcd_sum(uint32_t n) {
    uint32_t acc = 0;
    for (uint32_t i = n; i != 0; i--)
        acc += c_gcd(((i * 7919u) & 0xFFFFu) | 1u, i);
    return acc;
}

/* acc = acc * 3 + fib(13 + (i & 3)) for i = n .. 1, fib doubly recursive. */
static int32_t asm_fib_rec(void) {
    int32_t entry = ncode, loop = label(), fib = label(), base = label();
    op_i(OP_PUSH, 0); op_i(OP_STORE, 1);
    bind(loop);
    op_i(OP_LOAD, 0); op_i(OP_PUSH, 3); op(OP_AND); op_i(OP_PUSH, 13); op(OP_ADD);
    op_j(OP_CALL, fib);
    op_i(OP_LOAD, 1); op_i(OP_PUSH, 3); op(OP_MUL); op(OP_ADD); op_i(OP_STORE, 1);
    op_vj(OP_DECJNZ, 0, loop);
    op_i(OP_LOAD, 1); op(OP_HALT);
    /* fib: [n] -> [fib(n)] */
    bind(fib);
    op(OP_DUP); op_i(OP_PUSH, 2); op(OP_LT); op_j(OP_JNZ, base);
    op(OP_DUP); op_i(OP_PUSH, 1); op(OP_SUB); op_j(OP_CALL, fib);   /* [n f(n-1)] */
    op(OP_SWAP); op_i(OP_PUSH, 2); op(OP_SUB); op_j(OP_CALL, fib);  /* [f(n-1) f(n-2)] */
    op(OP_ADD);
    bind(base);
    op(OP_RET);
    return entry;
}

static uint32_t c_fib_rec(uint32_t n) {
    return n < 2 ? n : c_fib_rec(n - 1) + c_fib_rec(n - 2);
}

static uint32_t c_fib_rec_driver(uint32_t n) {
    uint32_t acc = 0;
    for (uint32_t i = n; i != 0; i--)
        acc = acc * 3u + c_fib_rec(13u + (i & 3u));
    return acc;
}

/* ---- driver ----------------------------------------------------------- */

static uint32_t check;
static int failed;

static uint32_t run(const char *name, int32_t entry, uint32_t n, uint32_t vars[NVARS]) {
    uint32_t result = 0;
    for (int i = 0; i < NVARS; i++)
        vars[i] = 0;
    vars[0] = n;
    int err = vm_run(entry, vars, &result);
    if (err != VM_OK) {
        printf("FAIL: %s: vm error %d\n", name, err);
        failed = 1;
    }
    check = mix32(check, result);
    return result;
}

static void expect(const char *name, uint32_t got, uint32_t want) {
    if (got != want) {
        printf("FAIL: %s: vm says %u, C says %u\n", name, got, want);
        failed = 1;
    }
}

int main(int argc, char **argv) {
    int32_t scale = parse_scale(argc, argv, DEFAULT_SCALE, MAX_SCALE);
    if (scale == 0)
        return 2;
    uint32_t s = (uint32_t)scale;

    int32_t e_mix = asm_mix();
    int32_t e_fib_iter = asm_fib_iter();
    int32_t e_collatz = asm_collatz();
    int32_t e_gcd = asm_gcd_sum();
    int32_t e_fib_rec = asm_fib_rec();
    if (!resolve()) {
        printf("FAIL: assembler error\n");
        return 1;
    }
    printf("bytecode: %d words\n", (int)ncode);

    uint32_t vars[NVARS], r, want, best_len, best_k;

    r = run("mix", e_mix, s * 1000u, vars);
    expect("mix", r, c_mix(s * 1000u));
    printf("mix(%u) = %08x\n", s * 1000u, r);

    r = run("fib_iter", e_fib_iter, s * 2000u, vars);
    expect("fib_iter", r, c_fib_iter(s * 2000u));
    printf("fib_iter(%u) mod 2^32 = %u\n", s * 2000u, r);

    r = run("collatz", e_collatz, s * 15u, vars);
    want = c_collatz(s * 15u, &best_len, &best_k);
    expect("collatz total", r, want);
    expect("collatz longest", vars[2], best_len);
    expect("collatz argmax", vars[3], best_k);
    printf("collatz(1..%u): %u steps, longest %u at %u\n", s * 15u, r, vars[2], vars[3]);
    check = mix32(check, vars[3]);

    r = run("gcd_sum", e_gcd, s * 100u, vars);
    expect("gcd_sum", r, c_gcd_sum(s * 100u));
    printf("gcd_sum(%u) = %u\n", s * 100u, r);

    r = run("fib_rec", e_fib_rec, s, vars);
    expect("fib_rec", r, c_fib_rec_driver(s));
    printf("fib_rec(%u) = %08x\n", s, r);

    if (failed)
        return 1;
    printf("vm instructions: %llu\n", (unsigned long long)vm_steps);
    printf("checksum: %08x\n", mix64(check, vm_steps));
    return 0;
}
