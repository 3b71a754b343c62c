//! The compile cache holds native code: nothing another user or a plugin can write may ever be
//! run from it. Tampered entries are discarded and recompiled, an entry rewritten under a
//! running server changes nothing, and a plugin cannot be granted warden's own files.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Fixture, ok_text, warden};
use serde_json::json;

/// The SHA-256 of "hello", as `codec__hash` prints it.
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A manifest serving `codec` with a cache of its own in the fixture's `cache/`.
const PRIVATE_CACHE: &str = r#"
[cache]
dir = "{dir}/cache"

[plugins.codec]
component = "{codec}"
"#;

fn hash_hello(fixture: &Fixture) -> (i32, String, String) {
    let manifest = fixture.manifest.to_str().expect("utf-8");
    warden(
        &[
            "call",
            "--manifest",
            manifest,
            "codec__hash",
            r#"{"algorithm": "sha256", "data": "hello"}"#,
        ],
        fixture.dir.path(),
    )
}

/// The one `.cwasm` entry in `dir`.
fn entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "one cache entry: {entries:?}");
    entries.into_iter().next().expect("entry")
}

/// Where the machine code of the ELF artifact inside `bytes` lies: (offset, length) of its
/// `.text` section, wherever the ELF image starts in the entry.
fn text_section(bytes: &[u8]) -> (usize, usize) {
    let elf = bytes
        .windows(4)
        .position(|w| w == b"\x7fELF")
        .expect("an ELF image in the entry");
    let image = &bytes[elf..];
    let u16_at =
        |at: usize| u16::from_le_bytes(image[at..at + 2].try_into().expect("u16")) as usize;
    let u32_at =
        |at: usize| u32::from_le_bytes(image[at..at + 4].try_into().expect("u32")) as usize;
    let u64_at =
        |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().expect("u64")) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |index: usize| shoff + index * shentsize;
    let names = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(header)
        .find(|&h| image[names + u32_at(h)..].starts_with(b".text\0"))
        .map(|h| (elf + u64_at(h + 0x18), u64_at(h + 0x20)))
        .expect("a .text section")
}

/// Overwrite the machine code of the entry at `path` with `int3`, in place (same inode).
fn poison_code_in_place(path: &Path) {
    let bytes = std::fs::read(path).expect("read entry");
    let (offset, len) = text_section(&bytes);
    assert!(len > 0, "an empty .text section");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open entry for writing");
    file.seek(SeekFrom::Start(offset as u64)).expect("seek");
    file.write_all(&vec![0xcc; len]).expect("overwrite code");
    file.sync_all().expect("sync");
}

#[test]
fn a_tampered_entry_is_never_run_but_discarded_and_recompiled() {
    let fixture = Fixture::new(PRIVATE_CACHE);
    let (code, stdout, stderr) = hash_hello(&fixture);
    assert_eq!(code, 0, "first call: {stderr}");
    assert!(stdout.contains(HELLO_SHA256), "{stdout}");
    let path = entry(&fixture.path("cache"));

    poison_code_in_place(&path);
    let poisoned = std::fs::read(&path).expect("read entry");
    let (code, stdout, stderr) = hash_hello(&fixture);
    assert_eq!(code, 0, "the poisoned code ran: {stderr}");
    assert!(stdout.contains(HELLO_SHA256), "{stdout}");
    assert!(
        stderr.contains("failed authentication"),
        "the tampered entry is reported: {stderr}"
    );
    assert_ne!(
        std::fs::read(&path).expect("read entry"),
        poisoned,
        "the entry was replaced by a fresh compile"
    );

    // A single flipped bit anywhere is as good as a poisoned section.
    let mut bytes = std::fs::read(&path).expect("read entry");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).expect("write entry");
    let (code, stdout, stderr) = hash_hello(&fixture);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(HELLO_SHA256), "{stdout}");
    assert!(stderr.contains("failed authentication"), "{stderr}");

    // An authentic entry of one component renamed to another's name is refused too.
    let fixture_b = Fixture::new(&format!(
        "{PRIVATE_CACHE}\n[plugins.files]\ncomponent = \"{{files}}\"\n"
    ));
    let (code, _, stderr) = hash_hello(&fixture_b);
    assert_eq!(code, 0, "{stderr}");
    let cache = fixture_b.path("cache");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "{entries:?}");
    std::fs::copy(&entries[0], &entries[1]).expect("swap entries");
    let (code, stdout, stderr) = hash_hello(&fixture_b);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(HELLO_SHA256), "{stdout}");
    assert!(stderr.contains("failed authentication"), "{stderr}");
}

#[tokio::test]
async fn rewriting_an_entry_under_a_running_server_changes_nothing() {
    let fixture = Fixture::new(PRIVATE_CACHE);
    // Fill the cache, so the server below loads the entry rather than compiling.
    let (code, _, stderr) = hash_hello(&fixture);
    assert_eq!(code, 0, "{stderr}");
    let path = entry(&fixture.path("cache"));

    let client = fixture.client().await;
    let args = json!({"algorithm": "sha256", "data": "hello"});
    assert!(ok_text(&client.call("codec__hash", args.clone()).await).contains(HELLO_SHA256));
    poison_code_in_place(&path);
    for _ in 0..3 {
        let result = client.call("codec__hash", args.clone()).await;
        assert!(ok_text(&result).contains(HELLO_SHA256), "{result:?}");
    }
    client.close().await;
}

#[test]
fn grants_over_wardens_own_files_are_refused() {
    let cases = [
        // rw over the folder holding the cache (and the manifest).
        (
            "[cache]\ndir = \"{dir}/cache\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\n\
             dirs = [{ host = \"{dir}\", guest = \"/project\", mode = \"rw\" }]\n",
            "warden's compile cache",
        ),
        // rw inside the cache.
        (
            "[cache]\ndir = \"{dir}\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\n\
             dirs = [{ host = \"{dir}/sub\", guest = \"/sub\", mode = \"rw\" }]\n",
            "warden's compile cache",
        ),
        // ro over the audit log's folder.
        (
            "[cache]\ndir = \"{dir}/cache\"\n\n[audit]\npath = \"{dir}/sub/audit.jsonl\"\n\n\
             [plugins.codec]\ncomponent = \"{codec}\"\n\
             dirs = [{ host = \"{dir}/sub\", guest = \"/logs\", mode = \"ro\" }]\n",
            "the audit log's directory",
        ),
        // ro over the cache key.
        (
            "[cache]\ndir = \"{dir}/sub/cache\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\n\
             dirs = [{ host = \"{dir}/sub\", guest = \"/sub\", mode = \"ro\" }]\n",
            "the compile cache key",
        ),
    ];
    for (body, needle) in cases {
        let fixture = Fixture::new(body);
        std::fs::create_dir_all(fixture.path("sub")).expect("sub");
        let manifest = fixture.manifest.to_str().expect("utf-8");
        let (code, _, stderr) = warden(&["check", manifest], fixture.dir.path());
        assert_ne!(code, 0, "accepted:\n{body}");
        assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
        assert!(
            stderr.contains("warden.toml:"),
            "names the grant's line:\n{stderr}"
        );
    }
    // Reading the folder that holds the manifest and the cache is fine (the key is not in it).
    let fixture = Fixture::new(
        "[cache]\ndir = \"{dir}/cache\"\nkey = \"0123456789abcdef0123456789abcdef\"\n\n\
         [plugins.codec]\ncomponent = \"{codec}\"\n\
         dirs = [{ host = \"{dir}\", guest = \"/project\", mode = \"ro\" }]\n",
    );
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, _, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_cache_or_key_others_can_write_is_refused() {
    let fixture = Fixture::new(PRIVATE_CACHE);
    let (code, _, stderr) = hash_hello(&fixture);
    assert_eq!(code, 0, "{stderr}");
    let cache = fixture.path("cache");
    let key = fixture.path("cache.key");
    assert_eq!(
        std::fs::metadata(&key)
            .expect("the key file was made beside the cache")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    for (mode, needle) in [
        (0o777, "writable by every user"),
        (0o770, "writable by its group"),
    ] {
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let (code, _, stderr) = hash_hello(&fixture);
        assert_ne!(code, 0, "a cache of mode {mode:o} was used");
        assert!(stderr.contains(needle), "{stderr}");
    }
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Owned by another user (only root can give it away; CI runs as root).
    if std::os::unix::fs::chown(&cache, Some(65534), None).is_ok() {
        let (code, _, stderr) = hash_hello(&fixture);
        assert_ne!(code, 0, "a cache owned by another user was used");
        assert!(stderr.contains("it is owned by uid 65534"), "{stderr}");
        std::os::unix::fs::chown(&cache, Some(0), None).expect("chown back");
    }

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, stderr) = hash_hello(&fixture);
    assert_ne!(code, 0, "a readable key was used");
    assert!(
        stderr.contains("readable or writable by others"),
        "{stderr}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // A key from the operator instead of the file: entries made under the file's key do not
    // verify, and are recompiled.
    let fixture = Fixture::new(&PRIVATE_CACHE.replace(
        "dir = \"{dir}/cache\"",
        &format!(
            "dir = \"{}\"\nkey = \"${{TEST_CACHE_KEY}}\"",
            cache.display()
        ),
    ));
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["call", "--manifest", manifest, "codec__hash"])
        .arg(r#"{"algorithm": "sha256", "data": "hello"}"#)
        .env("TEST_CACHE_KEY", "0123456789abcdef0123456789abcdef")
        .output()
        .expect("run warden");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains(HELLO_SHA256));
    assert!(stderr.contains("failed authentication"), "{stderr}");
}
