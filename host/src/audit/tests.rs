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

// Signed checkpoints.

/// A fresh Ed25519 key as a PEM `PRIVATE KEY` (PKCS#8 v2, as ring makes it).
fn pem_key() -> String {
    use base64::Engine as _;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("generate");
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let wrapped: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        wrapped.join("\n")
    )
}

/// A sink signing every `every` records (the timer an hour away), with a start record
/// written, and its public key.
fn signed_sink(path: &Path, every: u64) -> (std::sync::Arc<FileSink>, PublicKey) {
    let key = SigningKey::from_pem(&pem_key()).expect("key");
    let public = key.public();
    let sink = FileSink::open(path, 1 << 20, false)
        .expect("open")
        .with_replica("r1")
        .signed(Signing {
            key,
            every,
            interval: std::time::Duration::from_secs(3600),
        });
    sink.start(&StartRecord::new("test", Vec::new()))
        .expect("start");
    (sink, public)
}

fn value(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("json")
}

fn is_checkpoint(line: &str) -> bool {
    value(line)["kind"] == CHECKPOINT
}

/// Re-chain `lines` from `from` on (`seq` and `prev`), as someone rewriting the log would:
/// the chain itself is not keyed.
fn rechain(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let mut record = value(&lines[i]);
        let (seq, prev) = match i.checked_sub(1) {
            Some(before) => (
                value(&lines[before])["seq"].as_u64().expect("seq") + 1,
                line_hash(lines[before].as_bytes()),
            ),
            None => (0, GENESIS.to_owned()),
        };
        record["seq"] = json!(seq);
        record["prev"] = json!(prev);
        lines[i] = record.to_string();
    }
}

#[test]
fn a_signed_chain_verifies_and_names_its_last_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 3);
    write(&sink, 0..7);
    let all = lines(&path);
    // start, checkpoint, then a checkpoint after every third record.
    let kinds: Vec<bool> = all.iter().map(|l| is_checkpoint(l)).collect();
    assert_eq!(
        kinds,
        [
            false, true, false, false, false, true, false, false, false, true, false
        ]
    );
    let start = value(&all[0]);
    assert_eq!(start["replica"], "r1");
    assert_eq!(
        start["checkpoint"],
        json!({ "every": 3, "interval_ms": 3_600_000 })
    );
    let checkpoint = value(&all[9]);
    assert_eq!(checkpoint["head"], checkpoint["prev"]);
    assert_eq!(checkpoint["count"], 3);
    assert_eq!(checkpoint["key"], key.id());

    let report = verify_signed(std::slice::from_ref(&path), Some(&key)).expect("intact");
    assert_eq!((report.checkpoints, report.unsigned), (3, 1));
    let last = report.last_checkpoint.expect("a checkpoint");
    assert_eq!((last.seq, last.replica.as_str()), (9, "r1"));
    assert_eq!(report.replicas, ["r1"]);

    // A clean close signs the last record.
    sink.close().expect("close");
    let report = verify_signed(std::slice::from_ref(&path), Some(&key)).expect("intact");
    assert_eq!((report.checkpoints, report.unsigned), (4, 0));
    // Nothing new: no empty checkpoint.
    sink.close().expect("close");
    assert_eq!(lines(&path).len(), 12);
}

#[test]
fn cutting_the_log_at_a_checkpoint_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 3);
    write(&sink, 0..6);
    drop(sink);
    let all = lines(&path);
    // start, cp, r0 r1 r2 cp, r3 r4 r5 cp
    assert_eq!(all.len(), 10);
    for cut in [1, 5] {
        let kept = &all[..all.len() - cut];
        rewrite(&path, kept);
        let broken = verify_signed(std::slice::from_ref(&path), Some(&key))
            .expect_err("cut at a checkpoint");
        assert!(
            broken
                .reason
                .contains("3 records follow the last checkpoint")
                && broken.reason.contains("removed"),
            "cut {cut}: {}",
            broken.reason
        );
        assert_eq!(broken.line, kept.len(), "{broken}");
        // Without a key the chain itself holds: that is the chain's blind spot.
        verify(std::slice::from_ref(&path)).expect("the chain holds");
    }
}

#[test]
fn a_checkpoint_removed_and_the_records_rechained_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 3);
    write(&sink, 0..4);
    drop(sink);
    let mut all = lines(&path);
    // start, cp, r0 r1 r2 cp, r3 cp: take the middle checkpoint and the last one out.
    assert!(is_checkpoint(&all[5]) && is_checkpoint(&all[7]));
    all.truncate(7);
    all.remove(5);
    rechain(&mut all, 5);
    rewrite(&path, &all);
    verify(std::slice::from_ref(&path)).expect("the chain was rebuilt");
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("rechained");
    assert!(
        broken.reason.contains("4 records follow") || broken.reason.contains("3 records follow"),
        "{}",
        broken.reason
    );
}

#[test]
fn records_hours_apart_with_no_checkpoint_between_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 1000);
    let mut early = record(0);
    early.ts = "2026-11-21T18:00:00.000Z".into();
    sink.record(&early).expect("record");
    // What the timer would have written an hour later.
    sink.checkpoint().expect("checkpoint");
    let mut late = record(1);
    late.ts = "2026-11-21T20:00:00.000Z".into();
    sink.record(&late).expect("record");
    drop(sink);
    verify_signed(std::slice::from_ref(&path), Some(&key)).expect("intact");

    let mut all = lines(&path);
    // start, cp, early, cp, late, cp: the timer's checkpoint and the last one out.
    all.truncate(5);
    all.remove(3);
    rechain(&mut all, 3);
    rewrite(&path, &all);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("rechained");
    assert!(
        broken.reason.contains("7200 s after an unsigned one") && broken.reason.contains("3600 s"),
        "{}",
        broken.reason
    );
    assert_eq!(broken.line, 4);
}

#[test]
fn a_checkpoint_forged_with_another_key_or_verified_with_the_wrong_key_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 2);
    write(&sink, 0..2);
    drop(sink);
    let genuine = lines(&path);

    // The wrong key.
    let other = SigningKey::from_pem(&pem_key()).expect("key");
    let broken =
        verify_signed(std::slice::from_ref(&path), Some(&other.public())).expect_err("wrong key");
    assert!(
        broken.reason.contains("not by the key given"),
        "{}",
        broken.reason
    );
    assert_eq!(broken.line, 2);

    // The last records rewritten and the checkpoint re-signed with another key.
    let mut forged = genuine.clone();
    forged[3] = forged[3].replace("call 1", "call X");
    rechain(&mut forged, 4);
    let mut checkpoint: CheckpointRecord<'static> =
        serde_json::from_str(&forged[4]).expect("checkpoint");
    let seq = value(&forged[4])["seq"].as_u64().expect("seq");
    checkpoint.head = value(&forged[4])["prev"].as_str().expect("prev").to_owned();
    checkpoint.key = other.id().to_owned().into();
    checkpoint.sig = other.sign(&signed_bytes(seq, &checkpoint));
    let mut line = serde_json::to_value(&checkpoint).expect("json");
    line["seq"] = json!(seq);
    line["prev"] = json!(checkpoint.head);
    forged[4] = line.to_string();
    rewrite(&path, &forged);
    verify(std::slice::from_ref(&path)).expect("the chain was rebuilt");
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("forged");
    assert!(
        broken.reason.contains("not by the key given"),
        "{}",
        broken.reason
    );
    assert_eq!(broken.line, 5);

    // The same, claiming the genuine key's id.
    checkpoint.key = key.id().into();
    checkpoint.sig = other.sign(&signed_bytes(seq, &checkpoint));
    let mut line = serde_json::to_value(&checkpoint).expect("json");
    line["seq"] = json!(seq);
    line["prev"] = json!(checkpoint.head);
    forged[4] = line.to_string();
    rewrite(&path, &forged);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("forged");
    assert!(
        broken.reason.contains("signature does not hold"),
        "{}",
        broken.reason
    );
}

#[test]
fn an_edited_signed_record_fails_even_with_the_chain_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 3);
    write(&sink, 0..3);
    drop(sink);
    let mut all = lines(&path);
    // start, cp, r0 r1 r2 cp
    all[3] = all[3].replace("call 1", "call X");
    rewrite(&path, &all);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("edited");
    assert_eq!(broken.line, 4);
    assert!(broken.reason.contains("altered"), "{}", broken.reason);

    // Re-chained: the checkpoint's head no longer matches the chain.
    rechain(&mut all, 4);
    rewrite(&path, &all);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("rechained");
    assert_eq!(broken.line, 6);
    assert!(
        broken.reason.contains("does not match the chain's head"),
        "{}",
        broken.reason
    );

    // And with the head moved too, the signature fails.
    let mut checkpoint = value(&all[5]);
    checkpoint["head"] = checkpoint["prev"].clone();
    all[5] = checkpoint.to_string();
    rewrite(&path, &all);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("re-headed");
    assert!(
        broken.reason.contains("signature does not hold"),
        "{}",
        broken.reason
    );
}

#[test]
fn a_log_without_checkpoints_fails_with_a_key_and_passes_without() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    write(&FileSink::open(&path, 1 << 20, false).expect("open"), 0..3);
    let key = SigningKey::from_pem(&pem_key()).expect("key").public();
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("unsigned");
    assert!(
        broken.reason.contains("no signed checkpoint"),
        "{}",
        broken.reason
    );
    let report = verify(&[path]).expect("intact");
    assert_eq!((report.checkpoints, report.unsigned), (0, 3));
}

#[test]
fn a_malformed_signature_field_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 1000);
    drop(sink);
    let all = lines(&path);
    assert!(is_checkpoint(&all[1]));
    for (sig, expect) in [
        (json!("!!not base64!!"), "not base64"),
        (json!("AAAA"), "not the 64"),
        (json!(""), "not the 64"),
        (json!(17), "malformed checkpoint"),
        (json!(null), "malformed checkpoint"),
    ] {
        let mut bad = all.clone();
        let mut checkpoint = value(&bad[1]);
        checkpoint["sig"] = sig;
        bad[1] = checkpoint.to_string();
        rewrite(&path, &bad);
        let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("malformed");
        assert!(
            broken.reason.contains(expect),
            "{expect}: {}",
            broken.reason
        );
        assert_eq!(broken.line, 2);
    }
    let mut bad = all;
    let mut checkpoint = value(&bad[1]);
    checkpoint.as_object_mut().expect("object").remove("sig");
    bad[1] = checkpoint.to_string();
    rewrite(&path, &bad);
    let broken = verify_signed(std::slice::from_ref(&path), Some(&key)).expect_err("no sig");
    assert!(
        broken.reason.contains("missing field `sig`"),
        "{}",
        broken.reason
    );
}

#[test]
fn keys_are_read_in_the_forms_documented_and_others_refused() {
    let key = SigningKey::from_pem(&pem_key()).expect("key");
    let public = key.public();
    assert_eq!(PublicKey::parse(&public.pem()), Ok(public));
    assert_eq!(PublicKey::parse(&public.base64()), Ok(public));
    assert_eq!(public.id().len(), 16);
    assert_eq!(public.id(), key.id());
    assert!(matches!(
        SigningKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        Err(KeyError::Label(..))
    ));
    assert!(SigningKey::from_pem("not a key").is_err());
    assert_eq!(PublicKey::parse("AAAA"), Err(KeyError::Public));
}

#[test]
fn a_directory_groups_each_logs_rotated_and_live_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "a.jsonl",
        "a.jsonl.000002",
        "a.jsonl.000001",
        "a.jsonl.writers",
        "b.jsonl",
    ] {
        std::fs::write(dir.path().join(name), b"").expect("write");
    }
    let logs = group_logs(dir.path()).expect("read");
    let names: Vec<(String, Vec<String>)> = logs
        .iter()
        .map(|(live, files)| {
            let name = |p: &Path| p.file_name().expect("name").to_string_lossy().into_owned();
            (name(live), files.iter().map(|f| name(f)).collect())
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "a.jsonl".to_owned(),
                vec![
                    "a.jsonl.000001".to_owned(),
                    "a.jsonl.000002".to_owned(),
                    "a.jsonl".to_owned()
                ]
            ),
            ("b.jsonl".to_owned(), vec!["b.jsonl".to_owned()]),
        ]
    );
}

#[test]
fn two_writers_sharing_a_signed_log_keep_it_verifiable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (first, key) = signed_sink(&path, 3);
    write(&first, 0..2);
    let second = FileSink::open(&path, 1 << 20, false)
        .expect("open")
        .with_replica("r1");
    // An unsigned writer between signed records: the first writer counts them in.
    write(&second, 2..4);
    write(&first, 4..6);
    drop(second);
    first.close().expect("close");
    let report = verify_signed(std::slice::from_ref(&path), Some(&key)).expect("intact");
    // start, cp, r0 r1 (first) r2 r3 (second) r4 cp (first: 5 since the last), r5, cp (close)
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned),
        (10, 3, 0)
    );
    let all = lines(&path);
    assert!(is_checkpoint(&all[7]));
    assert_eq!(value(&all[7])["count"], 5);
}

#[test]
fn a_witnessed_checkpoint_must_still_be_in_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    let (sink, key) = signed_sink(&path, 3);
    write(&sink, 0..3);
    let witness = Witness::parse(&sink.last_checkpoint().expect("a checkpoint")).expect("parse");
    write(&sink, 3..4);
    drop(sink);
    let all = lines(&path);
    // start, cp, r0 r1 r2 cp (witnessed), r3 cp
    assert_eq!(witness.seq, 5);
    let report = verify_witnessed(
        std::slice::from_ref(&path),
        Some(&key),
        std::slice::from_ref(&witness),
    )
    .expect("intact");
    assert_eq!(report.witnessed, [0]);

    // Cut after the call before it: within the policy, but the witness is gone.
    rewrite(&path, &all[..3]);
    verify_signed(std::slice::from_ref(&path), Some(&key)).expect("within the policy");
    let broken = verify_witnessed(
        std::slice::from_ref(&path),
        Some(&key),
        std::slice::from_ref(&witness),
    )
    .expect_err("cut");
    assert!(
        broken.reason.contains("removed from its end"),
        "{}",
        broken.reason
    );

    // Another replica's witness is not this log's.
    let mut other = witness.clone();
    other.replica = "r2".into();
    let report =
        verify_witnessed(std::slice::from_ref(&path), Some(&key), &[other]).expect("not checked");
    assert!(report.witnessed.is_empty());

    // A rewritten log whose checkpoint at that seq differs.
    let mut changed = witness;
    changed.head = "0".repeat(64);
    rewrite(&path, &all);
    let broken = verify_witnessed(std::slice::from_ref(&path), Some(&key), &[changed])
        .expect_err("rewritten");
    assert!(
        broken.reason.contains("not the one witnessed"),
        "{}",
        broken.reason
    );
}

/// A sink whose disk is full.
struct Full;

impl AuditSink for Full {
    fn record(&self, _: &Record<'_>) -> Result<(), AuditError> {
        Err(AuditError::Io {
            message: "No space left on device".to_owned(),
        })
    }
}

#[test]
fn a_metered_sink_times_every_write_and_counts_the_failures() {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(false));
    let dir = tempfile::tempdir().expect("tempdir");
    let file: std::sync::Arc<dyn AuditSink> = std::sync::Arc::new(
        FileSink::open(&dir.path().join("audit.jsonl"), 1 << 20, false).expect("open"),
    );
    let ok = Metered::new(file, metrics.clone());
    ok.record(&record(0)).expect("written");
    ok.record(&record(1)).expect("written");
    let full = Metered::new(std::sync::Arc::new(Full), metrics.clone());
    assert!(full.record(&record(2)).is_err());
    let text = metrics.encode_prometheus();
    assert!(
        text.contains("warden_audit_write_duration_seconds_count 3\n"),
        "{text}"
    );
    assert!(
        text.contains("warden_audit_write_failures_total 1\n"),
        "{text}"
    );
}
