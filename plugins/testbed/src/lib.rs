//! The `testbed` plugin: a fixture for warden's end-to-end tests, never for production.
//!
//! Some tools misbehave on purpose (loop, allocate, panic, overflow the stack, shout on stdout) so
//! the tests can prove the host contains them; the `echo-*` tools cover every WIT type so the
//! tests can prove the schema mapping both ways.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:testbed/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
    },
});

use std::hint::black_box;
use std::io::Write;

use exports::warden::testbed::testbed::{Color, Guest, Nested, Numbers, Permissions, Point, Shape};
use warden_sdk::types::{Content, Media, ToolResult};

const MIB: usize = 1024 * 1024;

/// A valid 2x2 RGB PNG (red, green / blue, white).
const PNG: &[u8] = include_bytes!("tiny.png");

struct Testbed;

impl Guest for Testbed {
    fn spin() -> u64 {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn allocate(mebibytes: u32) -> u64 {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        while mebibytes == 0 || blocks.len() < mebibytes as usize {
            // `vec![x; n]` with x != 0 writes every byte, so the pages are really touched.
            blocks.push(black_box(vec![0xA5; MIB]));
        }
        black_box(&blocks);
        (blocks.len() * MIB) as u64
    }

    fn panic(message: String) {
        panic!("{message}");
    }

    fn recurse(depth: u64) -> u64 {
        down(depth)
    }

    fn shout(lines: u32) -> u32 {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for i in 0..lines {
            let _ = writeln!(out, r#"{{"jsonrpc":"2.0","id":1,"result":{{}}}}"#);
            let _ = writeln!(out, "stdout line {i}");
            let _ = writeln!(
                err,
                r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{}}}}"#
            );
            let _ = writeln!(err, "stderr line {i}");
        }
        let _ = out.flush();
        let _ = err.flush();
        lines
    }

    fn env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn env_all() -> Vec<(String, String)> {
        std::env::vars().collect()
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    }

    fn write_file(path: String, content: String) -> Result<(), String> {
        std::fs::write(&path, content).map_err(|e| format!("{path}: {e}"))
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = std::fs::read_dir(&path)
            .map_err(|e| format!("{path}: {e}"))?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{path}: {e}"))?;
        names.sort();
        Ok(names)
    }

    fn progress(steps: u32) -> u32 {
        for step in 1..=steps {
            let message = format!("step {step} of {steps}");
            warden_sdk::progress(f64::from(step), Some(f64::from(steps)), Some(&message));
            warden_sdk::log::info(&message);
        }
        steps
    }

    fn rich() -> ToolResult {
        ToolResult {
            content: vec![
                Content::Text("A 2x2 image: red, green, blue, white.".into()),
                Content::Image(Media {
                    data: PNG.to_vec(),
                    mime_type: "image/png".into(),
                }),
            ],
            structured: Some(
                r#"{"width":2,"height":2,"colors":["red","green","blue","white"]}"#.into(),
            ),
        }
    }

    fn fail(message: String) -> Result<String, String> {
        Err(message)
    }

    fn echo_record(value: Point) -> Point {
        value
    }

    fn echo_nested(value: Nested) -> Nested {
        value
    }

    fn echo_enum(value: Color) -> Color {
        value
    }

    fn echo_variant(value: Shape) -> Shape {
        value
    }

    fn echo_flags(value: Permissions) -> Permissions {
        value
    }

    fn echo_tuple(value: (String, u32, bool)) -> (String, u32, bool) {
        value
    }

    fn echo_char(value: char) -> char {
        value
    }

    fn echo_bytes(value: Vec<u8>) -> Vec<u8> {
        value
    }

    fn echo_scalars(signed: i64, unsigned: u64, float: f64) -> (i64, u64, f64) {
        (signed, unsigned, float)
    }

    fn echo_numbers(value: Numbers) -> Numbers {
        value
    }

    fn echo_option(value: Option<String>) -> Option<String> {
        value
    }

    fn echo_result(value: Result<u32, String>) -> Result<u32, String> {
        value
    }

    fn echo_list(value: Vec<String>) -> Vec<String> {
        value
    }
}

/// Recursion the optimizer cannot turn into a loop: each frame keeps a buffer alive across the
/// recursive call and uses it afterwards.
#[inline(never)]
fn down(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    let frame = black_box([depth as u8; 64]);
    let below = down(black_box(depth - 1));
    black_box(&frame);
    below + 1
}

export!(Testbed);
