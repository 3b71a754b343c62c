//! Components from OCI registries, through the real `warden` binary against a real registry
//! (Debian's `docker-registry`, started once for this test binary on 127.0.0.1): `warden push`,
//! then `check` pulls by tag and by digest; a pinned digest the registry does not serve, a tag
//! that moved after `warden lock`, a corrupted blob and a plain-HTTP remote registry are all
//! refused, and nothing refused reaches compilation.

mod common;
#[path = "support/registry.rs"]
mod registry;

use std::io::Write as _;

use common::{Fixture, plugin, warden};
use registry::{assert_serves_codec, compiled_artifacts, push, registry, unique_component};

fn fixture_for(reference: &str) -> Fixture {
    Fixture::new(&format!("[plugins.codec]\ncomponent = \"{reference}\"\n"))
}

fn run(fixture: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend(["--manifest", "warden.toml"]);
    warden(&all, fixture.dir.path())
}

#[test]
fn push_then_check_pulls_by_tag_and_by_digest() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "by-tag-and-digest");
    let reference = format!("oci://{}/warden/codec:v1", registry.addr);
    let (digest, pinned) = push(&file, &reference);

    // By tag: pulled, its digest logged, its tools listed. With a directory granted: the
    // grant is checked against warden's own files, and an unpulled component is none of them.
    let fixture = Fixture::new(&format!(
        "[plugins.codec]\ncomponent = \"{reference}\"\n\n[[plugins.codec.dirs]]\nhost = \"data\"\nguest = \"/data\"\n"
    ));
    std::fs::create_dir(fixture.path("data")).expect("mkdir data");
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 0, "check by tag: {stdout}{stderr}");
    assert!(stdout.contains("tool        codec__"), "{stdout}");
    assert!(stdout.contains(&format!("({reference} -> ")), "{stdout}");
    assert!(
        stderr.contains(&format!("resolved to {digest}")),
        "the log names the digest pulled: {stderr}"
    );
    // Its provenance: the reference and what it resolved to, the file's digest, no signer.
    let file_sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&file).expect("read")))
    };
    for line in [
        format!("  source      {reference} -> {digest}\n"),
        format!("  sha256      {file_sha256}\n"),
        "  signer      none\n".to_owned(),
        "  lock        no-lock\n".to_owned(),
    ] {
        assert!(stdout.contains(&line), "{line:?} in:\n{stdout}");
    }
    assert!(
        stdout.contains("[unpinned-component]"),
        "check warns that a bare tag is unpinned: {stdout}"
    );

    // By digest, with and without the tag.
    for reference in [
        pinned.clone(),
        format!("oci://{}/warden/codec@{digest}", registry.addr),
    ] {
        let fixture = fixture_for(&reference);
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_eq!(code, 0, "check {reference}: {stdout}{stderr}");
        assert!(stdout.contains("tool        codec__"), "{stdout}");
    }

    // A `sha256` pin of the component itself holds for a pulled one too.
    let blob = hex_sha256(&std::fs::read(&file).expect("read"));
    for (pin, ok) in [(blob.clone(), true), ("ab".repeat(32), false)] {
        let fixture = Fixture::new(&format!(
            "[plugins.codec]\ncomponent = \"{reference}\"\nsha256 = \"{pin}\"\n"
        ));
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_eq!(code == 0, ok, "sha256 = {pin}: {stdout}{stderr}");
        if !ok {
            assert!(stderr.contains(&blob), "names the actual digest: {stderr}");
        }
    }

    // The cached copy is content-addressed by the blob's digest, and one changed behind
    // warden's back is not used: it is pulled again.
    let cached = common::cache_dir().join(format!("oci/sha256-{blob}.wasm"));
    assert!(cached.exists(), "{} is cached", cached.display());
    std::fs::write(&cached, b"not the component").expect("tamper with the cache");
    let (code, stdout, stderr) = run(&fixture_for(&pinned), &["check"]);
    assert_eq!(
        code, 0,
        "a tampered cache entry is replaced: {stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read(&cached).expect("read cache"),
        std::fs::read(&file).expect("read")
    );
}

#[tokio::test]
async fn serve_pulls_by_digest_lists_and_runs_the_tools() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "served");
    let (_, pinned) = push(&file, &format!("oci://{}/warden/served:v1", registry.addr));
    assert_serves_codec(&fixture_for(&pinned)).await;
}

#[test]
fn a_pinned_digest_the_registry_does_not_serve_is_refused() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "pinned-mismatch");
    let reference = format!("oci://{}/warden/pinned:v1", registry.addr);
    let (digest, _) = push(&file, &reference);
    let wrong = format!("sha256:{}", "0".repeat(64));
    assert_ne!(digest, wrong);
    let fixture = fixture_for(&format!("{reference}@{wrong}"));
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_ne!(code, 0, "check must refuse: {stdout}{stderr}");
    assert!(stderr.contains(&wrong), "the error names the pin: {stderr}");
    assert!(stderr.contains("plugin `codec`"), "{stderr}");
    assert!(!stdout.contains("tool        codec__"), "{stdout}");
}

#[test]
fn a_tag_that_moved_after_lock_is_refused_with_both_digests() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let reference = format!("oci://{}/warden/moving:latest", registry.addr);
    let first = unique_component(work.path(), "codec", "moving-first");
    let (first_digest, _) = push(&first, &reference);

    // Beside a local plugin, which stays served whatever happens to the tag.
    let fixture = Fixture::new(&format!(
        "[plugins.codec]\ncomponent = \"{reference}\"\n\n[plugins.local]\ncomponent = \"{{codec}}\"\n"
    ));
    let (code, stdout, stderr) = run(&fixture, &["lock"]);
    assert_eq!(code, 0, "warden lock: {stdout}{stderr}");
    let lock = std::fs::read_to_string(fixture.path("warden.lock")).expect("read lock");
    assert!(
        lock.contains(&format!("resolved = \"{first_digest}\"")),
        "the lock records the digest the tag resolved to:\n{lock}"
    );
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 0, "locked and unchanged: {stdout}{stderr}");
    assert!(
        !stdout.contains("[unpinned-component]"),
        "the lock pins the tag: {stdout}"
    );

    // Someone pushes another component to the same tag.
    let second = unique_component(work.path(), "codec", "moving-second");
    let (second_digest, _) = push(&second, &reference);
    assert_ne!(first_digest, second_digest);
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 1, "a moved tag is refused: {stdout}{stderr}");
    assert!(stderr.contains("the tag moved"), "{stderr}");
    assert!(stderr.contains("plugin `codec` is not served"), "{stderr}");
    assert!(stdout.contains("REFUSED codec"), "{stdout}");
    assert!(!stdout.contains("tool        codec__"), "{stdout}");
    assert!(
        stdout.contains("tool        local__hash"),
        "the other plugin is served: {stdout}"
    );
    assert!(
        stderr.contains(&first_digest),
        "names the locked digest: {stderr}"
    );
    assert!(
        stderr.contains(&second_digest),
        "names the new digest: {stderr}"
    );

    // `warden lock --diff` shows the move (it pulls the new component to show its tools).
    let (code, diff, stderr) = run(&fixture, &["lock", "--diff"]);
    assert_eq!(code, 1, "lock --diff: {diff}{stderr}");
    assert!(diff.contains("the tag moved"), "{diff}");
    assert!(
        diff.contains(&first_digest) && diff.contains(&second_digest),
        "{diff}"
    );

    // `warden lock` accepts the move.
    let (code, stdout, stderr) = run(&fixture, &["lock"]);
    assert_eq!(code, 0, "warden lock: {stdout}{stderr}");
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 0, "accepted: {stdout}{stderr}");
}

#[test]
fn a_corrupted_blob_never_reaches_the_cache_or_compilation() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "corrupted-blob");
    let reference = format!("oci://{}/warden/corrupt:v1", registry.addr);
    let (_, pinned) = push(&file, &reference);

    // Flip one byte of the layer in the registry's own storage: it serves the bytes as stored.
    let bytes = std::fs::read(&file).expect("read");
    let blob = hex_sha256(&bytes);
    let stored = registry.storage.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{blob}/data",
        &blob[..2]
    ));
    let mut corrupted = std::fs::read(&stored).expect("read the stored blob");
    assert_eq!(corrupted, bytes);
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x20;
    std::fs::File::create(&stored)
        .and_then(|mut f| f.write_all(&corrupted))
        .expect("corrupt the stored blob");

    // A cache of its own, so nothing cached by another test can stand in for the pull.
    let fixture = Fixture::new(&format!(
        "[cache]\ndir = \"{{dir}}/cache\"\n\n[plugins.codec]\ncomponent = \"{pinned}\"\n"
    ));
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_ne!(code, 0, "a corrupted blob is refused: {stdout}{stderr}");
    assert!(
        stderr.contains(&format!("not its digest sha256:{blob}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("compiling"),
        "nothing was compiled: {stderr}"
    );
    let oci = fixture.path("cache/oci");
    let kept: Vec<_> = std::fs::read_dir(&oci)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        kept.is_empty(),
        "nothing is left in {}: {kept:?}",
        oci.display()
    );
    let compiled = compiled_artifacts(&fixture.path("cache"));
    assert!(compiled.is_empty(), "no compiled artifact: {compiled:?}");
}

/// Push `layers` (media type, bytes, declared size or `None` for the true one) with a config of
/// `config_type` straight through oci-client, bypassing `warden push`; returns the pinned
/// `oci://` reference.
async fn push_raw(
    repository: &str,
    config_type: &str,
    layers: &[(&str, Vec<u8>, Option<i64>)],
) -> String {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
    common::install_crypto();
    let registry = registry();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let target = oci_client::Reference::with_tag(
        registry.addr.clone(),
        repository.to_owned(),
        "v1".to_owned(),
    );
    client.store_auth_if_needed(&registry.addr, &auth).await;
    let image_layers: Vec<ImageLayer> = layers
        .iter()
        .map(|(media, bytes, _)| ImageLayer::new(bytes.clone(), (*media).to_owned(), None))
        .collect();
    let config = Config::new(b"{}".to_vec(), config_type.to_owned(), None);
    for layer in &image_layers {
        client
            .push_blob(&target, layer.data.clone(), &layer.sha256_digest())
            .await
            .expect("push layer");
    }
    client
        .push_blob(&target, config.data.clone(), &config.sha256_digest())
        .await
        .expect("push config");
    let mut manifest = OciImageManifest::build(&image_layers, &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
    for (descriptor, (_, _, size)) in manifest.layers.iter_mut().zip(layers) {
        if let Some(size) = size {
            descriptor.size = *size;
        }
    }
    let bytes = serde_json::to_vec(&manifest).expect("manifest");
    let digest = format!("sha256:{}", hex_sha256(&bytes));
    client
        .push_manifest_raw(
            &target,
            bytes,
            OCI_IMAGE_MEDIA_TYPE.parse().expect("media type"),
        )
        .await
        .expect("push manifest");
    format!("oci://{}/{repository}:v1@{digest}", registry.addr)
}

#[tokio::test]
async fn artifacts_that_are_not_one_wasm_layer_or_lie_about_their_size_are_refused() {
    let component = std::fs::read(plugin("codec")).expect("read codec");
    let cases = [
        (
            push_raw(
                "warden/image",
                "application/vnd.oci.image.config.v1+json",
                &[("application/wasm", component.clone(), None)],
            )
            .await,
            "its config is `application/vnd.oci.image.config.v1+json`",
        ),
        (
            push_raw(
                "warden/tarball",
                "application/vnd.wasm.config.v0+json",
                &[(
                    "application/vnd.oci.image.layer.v1.tar",
                    component.clone(),
                    None,
                )],
            )
            .await,
            "its layer is `application/vnd.oci.image.layer.v1.tar`",
        ),
        (
            push_raw(
                "warden/two",
                "application/vnd.wasm.config.v0+json",
                &[
                    ("application/wasm", component.clone(), None),
                    ("application/wasm", b"second".to_vec(), None),
                ],
            )
            .await,
            "it has 2 layers, not one",
        ),
        (
            push_raw(
                "warden/huge",
                "application/vnd.wasm.config.v0+json",
                &[("application/wasm", b"tiny".to_vec(), Some(1 << 40))],
            )
            .await,
            "larger than",
        ),
        (
            push_raw(
                "warden/short",
                "application/vnd.wasm.config.v0+json",
                &[("application/wasm", component.clone(), Some(100))],
            )
            .await,
            "more bytes than the layer's size",
        ),
    ];
    for (reference, expected) in cases {
        let fixture = Fixture::new(&format!(
            "[cache]\ndir = \"{{dir}}/cache\"\n\n[plugins.codec]\ncomponent = \"{reference}\"\n"
        ));
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_ne!(code, 0, "{reference} must be refused: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{reference}: {stderr}");
        let cached = std::fs::read_dir(fixture.path("cache/oci"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(cached, 0, "{reference}: nothing cached");
    }
}

#[test]
fn push_refuses_what_is_not_a_component_and_references_it_cannot_push_to() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let junk = work.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").expect("write");
    let component = unique_component(work.path(), "codec", "push-refusals");
    let tagged = format!("oci://{}/warden/refusals:v1", registry.addr);
    let digest = format!("sha256:{}", "1".repeat(64));
    for (file, reference, expected) in [
        (&junk, tagged.as_str(), "not a usable component"),
        (
            &component,
            "oci+http://registry.example/warden/x:v1",
            "allowed only for a loopback registry",
        ),
        (&component, "warden/x:v1", "not an OCI reference"),
        (
            &component,
            &format!("oci://{}/warden/x@{digest}", registry.addr),
            "push to a tag",
        ),
    ] {
        let (code, stdout, stderr) = warden(
            &["push", &file.display().to_string(), reference],
            work.path(),
        );
        assert_ne!(code, 0, "{reference}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{reference}: {stderr}");
    }
    // Nothing reached the registry: the tag does not exist.
    let fixture = fixture_for(&tagged);
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("plugin `codec`"), "{stderr}");
}

#[test]
fn check_json_reports_an_unpinned_tag() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "unpinned-json");
    let reference = format!("oci://{}/warden/unpinned:v1", registry.addr);
    let (_, pinned) = push(&file, &reference);
    let (code, stdout, stderr) = run(&fixture_for(&reference), &["check", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let codes = common::warning_codes(&report);
    assert!(codes.contains(&"unpinned-component"), "{codes:?}");
    let provenance = &report["plugins"][0]["provenance"];
    assert_eq!(provenance["source"], reference.as_str(), "{provenance}");
    let resolved = provenance["resolved"].as_str().unwrap_or_default();
    assert!(
        resolved.starts_with("sha256:") && pinned.ends_with(resolved),
        "{provenance}"
    );
    let (code, stdout, stderr) = run(&fixture_for(&pinned), &["check", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        !stdout.contains("unpinned-component"),
        "a digest pins it: {stdout}"
    );
}

#[test]
fn malformed_and_plain_http_remote_references_are_refused_at_load() {
    for (component, expected) in [
        (
            "oci+http://registry.example:5000/warden/codec:v1",
            "allowed only for a loopback registry",
        ),
        ("oci://registry.example/warden/codec", "no tag or digest"),
        (
            "oci://registry.example/Warden/codec:v1",
            "not a repository name",
        ),
        (
            "oci://registry.example/warden/codec@sha256:abc",
            "not a digest",
        ),
    ] {
        let fixture = fixture_for(component);
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_ne!(code, 0, "{component}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{component}: {stderr}");
        // The error is at the `component` line (line 5: after the [cache] section).
        assert!(stderr.contains("warden.toml:5:"), "{component}: {stderr}");
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
