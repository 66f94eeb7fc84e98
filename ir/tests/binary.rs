//! The binary form's errors: each malformed blob through one helper,
//! `check_decode(hex, "at byte N: message")`. (Random corruption is in `props.rs`.)

use ir::binary::{decode, encode, MAX_BODY};
use ir::text::parse;

/// A small valid trace and its encoding, byte by byte.
const BASE_TEXT: &str = "trace locals=1
  in  v0:i32 = slot 0
  v1:i32 = i32.add v0 1
  loop [s0=v1]
";
const BASE_HEX: &str = "4b4c4e54 01  01  01 00 00 00 00  01 00 01 00 01 01  00 01 00 02";
//                      magic   ver locals inputs:1 v0 i32 slot 0  body:1 i32.add v1 v0 const 1  loop state:1 s0 v1

fn bytes(hex: &str) -> Vec<u8> {
    let digits: String = hex.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// `hex` (spaces ignored) must fail to decode with exactly `expected`.
#[track_caller]
fn check_decode(hex: &str, expected: &str) {
    match decode(&bytes(hex)) {
        Ok(trace) => panic!("expected `{expected}`, but it decoded:\n{trace}"),
        Err(e) => assert_eq!(e.to_string(), expected),
    }
}

#[test]
fn the_layout_is_as_documented() {
    let trace = parse(BASE_TEXT).unwrap();
    assert_eq!(encode(&trace), bytes(BASE_HEX));
    assert_eq!(decode(&bytes(BASE_HEX)), Ok(trace));
}

#[test]
fn header_errors() {
    check_decode(
        "",
        "at byte 0: expected the magic bytes `KLNT`, found the end of the blob",
    );
    check_decode(
        "4b4c4e",
        "at byte 0: expected the magic bytes `KLNT`, found the end of the blob",
    );
    check_decode(
        "4b4c4e55 01 00 00 00 00 00",
        "at byte 0: expected the magic bytes `KLNT`",
    );
    check_decode(
        "4b4c4e54",
        "at byte 4: expected a version byte, found the end of the blob",
    );
    check_decode(
        "4b4c4e54 02 00 00 00 00 00",
        "at byte 4: expected version 1, found 2",
    );
    check_decode(
        "4b4c4e54 01",
        "at byte 5: expected the number of locals, found the end of the blob",
    );
}

#[test]
fn number_errors() {
    // Five bytes of LEB128 carry 35 bits; a u32 may use only 4 of the last byte's 7.
    check_decode(
        "4b4c4e54 01 ffffffff1f 00 00 00 00",
        "at byte 5: expected the number of locals (a LEB128 u32), found one out of range",
    );
    check_decode(
        "4b4c4e54 01 ffffffff8f01 00 00 00 00",
        "at byte 5: expected the number of locals (a LEB128 u32), found one out of range",
    );
    check_decode(
        "4b4c4e54 01 8100 00 00 00 00",
        "at byte 5: expected the number of locals (a LEB128 u32), found an overlong encoding",
    );
    check_decode(
        "4b4c4e54 01 80",
        "at byte 6: expected the number of locals, found the end of the blob",
    );
}

#[test]
fn count_errors() {
    check_decode(
        "4b4c4e54 01 01 05 00 00",
        "at byte 6: expected the number of inputs, found 5, more than the 2 bytes left",
    );
    check_decode(
        &format!("4b4c4e54 01 01 00 {}", leb(MAX_BODY + 1)),
        &format!(
            "at byte 7: expected the number of instructions, at most {MAX_BODY}, found {}",
            MAX_BODY + 1
        ),
    );
    check_decode(
        "4b4c4e54 01 01 00 00 00 7f",
        "at byte 9: expected the number of state slots, found 127, more than the 0 bytes left",
    );
}

#[test]
fn tag_errors() {
    check_decode(
        "4b4c4e54 01 01 01 00 04 00 00  00 00 00",
        "at byte 8: expected a type (0x00 to 0x03), found 0x04",
    );
    check_decode(
        "4b4c4e54 01 01 01 00 00 02 00  00 00 00",
        "at byte 9: expected an input source (0x00 slot or 0x01 global), found 0x02",
    );
    check_decode(
        "4b4c4e54 01 01 00 01 ee 00 00",
        "at byte 8: expected an instruction, found 0xee",
    );
    check_decode(
        "4b4c4e54 01 01 00 01 f1 0e 00 00 00 00 00",
        "at byte 9: expected a load kind, found 0x0e",
    );
    check_decode(
        "4b4c4e54 01 01 00 01 f2 09 00 00 00 00 00",
        "at byte 9: expected a store kind, found 0x09",
    );
    check_decode(
        "4b4c4e54 01 01 00 00 03",
        "at byte 8: expected the end (0x00 loop, 0x01 or 0x02 exit), found 0x03",
    );
    // An exit inside inlined calls (end 0x02): id, pc, offset, no state, then the calls.
    check_decode(
        "4b4c4e54 01 01 00 00 02 00 00 00 00 11",
        "at byte 13: expected the number of inlined calls, at most 16, found 17",
    );
    check_decode(
        "4b4c4e54 01 01 00 00 02 00 00 00 00 00",
        "at byte 13: expected at least one inlined call, found 0",
    );
    check_decode(
        "4b4c4e54 01 01 00 00 02 00 00 00 00 01 05 00",
        "at byte 16: expected an inlined call's return pc, found the end of the blob",
    );
    // Decoded, then validated: a callee's frame must start above its caller's.
    check_decode(
        "4b4c4e54 01 01 00 00 02 00 00 00 00 02 05 08 01 06 04 01",
        "at byte 8: invalid trace: exit 0: inlined call 1 (function 6) has its frame at slot 4, \
         not above its caller's at slot 8",
    );
    // An operand is an even value tag or 0x01 (a constant follows).
    check_decode(
        "4b4c4e54 01 01 01 00 00 00 00  01 00 01 03 01 01  00 00",
        "at byte 14: expected an operand (an even value tag or 0x01), found 0x3",
    );
    check_decode(
        "4b4c4e54 01 01 01 00 00 00 00  01 00 01 00 01",
        "at byte 16: expected a constant, found the end of the blob",
    );
}

#[test]
fn trailing_and_truncated_blobs() {
    check_decode(
        &format!("{BASE_HEX} 00"),
        "at byte 21: expected the end of the blob, found 1 more byte",
    );
    let whole = bytes(BASE_HEX);
    // Every proper prefix fails, at an offset inside it, saying it ran out (or that a
    // count promises more than is left).
    for n in 0..whole.len() {
        let e = decode(&whole[..n]).expect_err("a prefix is not a trace");
        let ran_out =
            e.message.contains("found the end of the blob") || e.message.contains("bytes left");
        assert!(ran_out && e.offset <= n, "prefix of {n} bytes: {e}");
    }
}

#[test]
fn invalid_traces_are_refused() {
    // The base trace with its operand v0 changed to v5, and with the input's type i64.
    check_decode(
        "4b4c4e54 01 01 01 00 00 00 00  01 00 01 0a 01 01  00 01 00 02",
        "at byte 12: invalid trace: v5 is used but not defined before",
    );
    check_decode(
        "4b4c4e54 01 01 01 00 01 00 00  01 00 01 00 01 01  00 01 00 02",
        "at byte 12: invalid trace: v0 is i64, expected i32",
    );
    // The constant 2^32 where an i32 is expected.
    check_decode(
        "4b4c4e54 01 01 01 00 00 00 00  01 00 01 00 01 8080808010  00 01 00 02",
        "at byte 12: invalid trace: constant 0x100000000 does not fit i32",
    );
}

fn leb(mut n: u32) -> String {
    let mut out = String::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out += &format!("{byte:02x}");
            return out;
        }
        out += &format!("{:02x}", byte | 0x80);
    }
}
