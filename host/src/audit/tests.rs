//! The file sink and the verifier together: chains hold across writes, reopenings and
//! rotations, and every kind of tampering is found at the right line.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

fn record(n: u64) -> Record<'static> {
    Record {
        ts: "2026-11-21T18:32:00.123Z".into(),
        id: format!("id-{n}").into(),
        mcp_id: Some(json!(n)),
        principal: "local".into(),
        roles: vec!["reader".into()].into(),
        transport: "stdio".into(),
        plugin: Some("testbed".into()),
        tool: "testbed__emit".into(),
        method: None,
        args: json!({ "text": format!("call {n}") })
            .as_object()
            .cloned()
            .map(Cow::Owned),
        outcome: Outcome::Ok,
        error: None,
        duration_us: 10,
        fuel: Some(100),
        output_bytes: Some(42),
        redactions: Default::default(),
        truncated: false,
        usage: Default::default(),
        approval: None,
        dropped: None,
        trace_id: None,
    }
}

fn write(sink: &FileSink, range: std::ops::Range<u64>) {
    for n in range {
        sink.record(&record(n)).expect("record");
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

#[test]
fn a_fresh_chain_verifies_and_starts_at_genesis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit/warden.jsonl");
    let sink = FileSink::open(&path, 1 << 20, false).expect("open");
    write(&sink, 0..10);
    let all = lines(&path);
    assert_eq!(all.len(), 10);
    let first: serde_json::Value = serde_json::from_str(&all[0]).expect("json");
    assert_eq!(first["seq"], 0);
    assert_eq!(first["prev"], GENESIS);
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["args"]["text"], "call 0");
    let report = verify(&[path]).expect("intact");
    assert_eq!(report.records, 10);
    assert_eq!(report.seqs, Some((0, 9)));
    assert!(!report.continues);
}

#[test]
fn an_edited_middle_line_is_reported_at_that_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 1 << 20, false).expect("open"), 0..9);
    let mut all = lines(&path);
    all[4] = all[4].replace("call 4", "call X");
    rewrite(&path, &all);
    let broken = verify(std::slice::from_ref(&path)).expect_err("tampered");
    assert_eq!((broken.file.as_path(), broken.line), (path.as_path(), 5));
    assert!(broken.reason.contains("altered"), "{}", broken.reason);
}

#[test]
fn removed_and_reordered_lines_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 1 << 20, false).expect("open"), 0..6);
    let all = lines(&path);

    let mut removed = all.clone();
    removed.remove(2);
    rewrite(&path, &removed);
    let broken = verify(std::slice::from_ref(&path)).expect_err("removed");
    assert_eq!(broken.line, 3);
    assert!(
        broken.reason.contains("seq 3 follows seq 1"),
        "{}",
        broken.reason
    );

    let mut swapped = all.clone();
    swapped.swap(1, 2);
    rewrite(&path, &swapped);
    assert_eq!(
        verify(std::slice::from_ref(&path))
            .expect_err("swapped")
            .line,
        2
    );

    let mut garbage = all;
    garbage[3] = "not json".into();
    rewrite(&path, &garbage);
    let broken = verify(&[path]).expect_err("garbage");
    assert_eq!(broken.line, 4);
    assert!(
        broken.reason.contains("not a JSON record"),
        "{}",
        broken.reason
    );
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 1 << 20, false).expect("open"), 0..3);
    write(
        &FileSink::open(&path, 1 << 20, false).expect("reopen"),
        3..5,
    );
    let report = verify(&[path]).expect("intact");
    assert_eq!(report.seqs, Some((0, 4)));
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let sink = FileSink::open(&path, 4096, false).expect("open");
    write(&sink, 0..40);
    drop(sink);
    // A restart after rotation continues from the live file.
    write(&FileSink::open(&path, 4096, false).expect("reopen"), 40..50);

    let rotated: Vec<PathBuf> = rotated_files(&path).into_iter().map(|(_, p)| p).collect();
    assert!(rotated.len() >= 2, "{rotated:?}");
    assert_eq!(rotated[0], rotated_name(&path, 1));
    for file in rotated.iter().chain([&path]) {
        let size = std::fs::metadata(file).expect("stat").len();
        assert!(size <= 4096, "{} is {size} bytes", file.display());
    }
    let mut all = rotated.clone();
    all.push(path.clone());
    let report = verify(&all).expect("intact across files");
    assert_eq!((report.records, report.seqs), (50, Some((0, 49))));

    // The live file alone continues a chain it cannot check, and says so.
    let alone = verify(std::slice::from_ref(&path)).expect("intact");
    assert!(alone.continues);

    // A missing middle file breaks the chain where the next one starts.
    let mut gap = all.clone();
    gap.remove(1);
    let broken = verify(&gap).expect_err("gap");
    assert_eq!((broken.file.as_path(), broken.line), (gap[1].as_path(), 1));
}

#[test]
fn without_a_live_file_the_chain_continues_from_the_newest_rotated_one() {
    // Removing the tail of a chain (here, the whole live file) cannot be detected by the
    // chain itself; the writer picks up where the newest surviving record left off.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 4096, false).expect("open"), 0..30);
    let rotated: Vec<PathBuf> = rotated_files(&path).into_iter().map(|(_, p)| p).collect();
    let last_rotated = lines(rotated.last().expect("rotated"));
    let last: serde_json::Value =
        serde_json::from_str(last_rotated.last().expect("a record")).expect("json");
    std::fs::remove_file(&path).expect("remove live");
    write(&FileSink::open(&path, 4096, false).expect("reopen"), 30..31);
    let mut all = rotated;
    all.push(path.clone());
    let report = verify(&all).expect("intact");
    let next = last["seq"].as_u64().expect("seq") + 1;
    assert_eq!(report.seqs.map(|(_, last)| last), Some(next));
}

#[test]
fn a_torn_last_line_is_closed_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 1 << 20, false).expect("open"), 0..3);
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("{\"seq\":3,\"ts\":");
    std::fs::write(&path, text).expect("write");
    write(
        &FileSink::open(&path, 1 << 20, false).expect("reopen"),
        4..5,
    );
    assert_eq!(lines(&path).len(), 5);
    let broken = verify(&[path]).expect_err("torn");
    assert_eq!(broken.line, 4);
}

#[test]
fn last_lines_reads_backwards_across_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.txt");
    let body: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&path, &body).expect("write");
    let tail = last_lines(&path, 3).expect("tail");
    assert_eq!(
        tail,
        [
            b"line 19997".to_vec(),
            b"line 19998".to_vec(),
            b"line 19999".to_vec()
        ]
    );
    assert_eq!(last_lines(&path, 30_000).expect("all").len(), 20_000);
    std::fs::write(&path, "a\nb").expect("write");
    assert_eq!(last_lines(&path, 1).expect("torn"), [b"b".to_vec()]);
    std::fs::write(&path, "").expect("write");
    assert!(last_lines(&path, 1).expect("empty").is_empty());
}

#[test]
fn two_sinks_on_one_file_interleave_into_one_chain() {
    // Two processes (here two open files: `flock` locks each open file on its own).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let a = FileSink::open(&path, 4096, false).expect("open a");
    let b = FileSink::open(&path, 4096, false).expect("open b");
    for n in 0..30 {
        let sink = if n % 3 == 0 { &b } else { &a };
        sink.record(&record(n)).expect("record");
    }
    let mut all: Vec<PathBuf> = rotated_files(&path).into_iter().map(|(_, p)| p).collect();
    assert!(!all.is_empty(), "rotated by both sinks");
    all.push(path);
    let report = verify(&all).expect("one intact chain");
    assert_eq!((report.records, report.seqs), (30, Some((0, 29))));
}

#[test]
fn a_deleted_live_file_is_started_again_and_continues_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let sink = FileSink::open(&path, 1 << 20, false).expect("open");
    write(&sink, 0..3);
    let last = lines(&path).pop().expect("a record");
    std::fs::remove_file(&path).expect("delete");
    write(&sink, 3..5);
    let all = lines(&path);
    assert_eq!(all.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&all[0]).expect("json");
    assert_eq!(first["seq"], 3);
    assert_eq!(first["prev"], line_hash(last.as_bytes()).as_str());
    let report = verify(&[path]).expect("intact");
    assert!(report.continues);
}

#[test]
fn a_torn_line_left_by_another_writer_is_closed_before_the_next_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let sink = FileSink::open(&path, 1 << 20, false).expect("open");
    write(&sink, 0..2);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut file, b"{\"seq\":2,").expect("append");
    write(&sink, 3..4);
    let all = lines(&path);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[2], "{\"seq\":2,");
    let next: serde_json::Value = serde_json::from_str(&all[3]).expect("a whole record");
    assert_eq!(next["seq"], 3);
}

#[test]
fn a_lone_writer_takes_no_lock_and_a_second_writer_makes_both_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let other = || std::fs::File::open(&path).expect("open the log");
    let a = FileSink::open(&path, 1 << 20, false).expect("open a");
    // Alone: an append goes through while someone else holds the lock.
    let holder = other();
    holder.lock().expect("lock");
    a.record(&record(0)).expect("a lone append");
    holder.unlock().expect("unlock");

    // With a second writer, appends wait for the lock.
    let b = FileSink::open(&path, 1 << 20, false).expect("open b");
    holder.lock().expect("lock");
    std::thread::scope(|scope| {
        let append = scope.spawn(|| a.record(&record(1)));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!append.is_finished(), "an append did not wait for the lock");
        holder.unlock().expect("unlock");
        append.join().expect("thread").expect("append");
    });
    b.record(&record(2)).expect("b appends");

    // b gone, a is alone again.
    drop(b);
    holder.lock().expect("lock");
    a.record(&record(3)).expect("a lone append again");
    holder.unlock().expect("unlock");
    let report = verify(&[path]).expect("one intact chain");
    assert_eq!((report.records, report.seqs), (4, Some((0, 3))));
}

#[test]
fn start_records_share_the_chain_with_calls_and_keep_their_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit/warden.jsonl");
    let sink = FileSink::open(&path, 1 << 20, false).expect("open");
    let long = "p".repeat(5000);
    let start = StartRecord::new(
        "0.1.0",
        vec![
            StartPlugin::new("files", "files.wasm", "ab12", None, None, "matches"),
            StartPlugin::new(
                "codec",
                &long,
                "cd34",
                Some("sha256:ef"),
                Some("key sha256:01"),
                "no-lock",
            ),
        ],
    );
    sink.start(&start).expect("start");
    write(&sink, 0..2);
    sink.start(&start).expect("start again");
    write(&sink, 2..3);
    let all: Vec<serde_json::Value> = lines(&path)
        .iter()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(all.len(), 5);
    let first = &all[0];
    // As call records: `seq` first, `prev` last.
    let text = &lines(&path)[0];
    assert!(
        text.starts_with(r#"{"seq":0,"kind":"start","ts":"#),
        "{text}"
    );
    assert!(
        text.contains(r#""warden":"0.1.0","plugins":[{"plugin":"files""#),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(r#"],"prev":"{GENESIS}"}}"#)),
        "{text}"
    );
    assert_eq!(first["seq"], 0);
    assert_eq!(first["prev"], GENESIS);
    assert_eq!(first["kind"], START);
    assert_eq!(
        first["plugins"][0],
        json!({ "plugin": "files", "source": "files.wasm", "sha256": "ab12", "lock": "matches" })
    );
    assert_eq!(first["plugins"][1]["resolved"], "sha256:ef");
    assert_eq!(first["plugins"][1]["signer"], "key sha256:01");
    let source = first["plugins"][1]["source"].as_str().expect("source");
    assert!(
        source.len() < MAX_RECORDED_ERROR + 32 && source.ends_with("bytes]"),
        "{}",
        source.len()
    );
    // Call records keep their shape: no `kind`.
    assert_eq!(all[1]["seq"], 1);
    assert!(all[1].get("kind").is_none(), "{}", all[1]);
    assert_eq!(all[3]["kind"], START);
    let report = verify(&[path]).expect("intact");
    assert_eq!(report.records, 5);
}
