//! Signed components, through the real `warden` binary: keys made with openssl as the docs
//! say, cosign-format signatures pushed to and read from a real registry (Debian's
//! `docker-registry` on 127.0.0.1) by `warden push --sign` and `warden sign`, detached Sigstore
//! bundles beside local files, and keyless bundles checked offline against a test trusted root
//! (made by tests/support/sigstore_fixtures.py). Each refusal says which check failed, and
//! nothing refused is compiled.

mod common;
#[path = "support/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, warden};
use registry::{assert_serves_codec, compiled_artifacts, push, registry, unique_component};

const IDENTITY: &str =
    "https://github.com/warden-test/tools/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A P-256 key pair made by openssl, as docs/MANIFEST.md shows: (`NAME.key`, `NAME.pub`).
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let (private_s, public_s) = (private.display().to_string(), public.display().to_string());
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &private_s,
    ]);
    openssl(&["pkey", "-in", &private_s, "-pubout", "-out", &public_s]);
    (private, public)
}

/// The fingerprint warden gives `public` (`key sha256:...`), from `warden sign`'s own output.
fn fingerprint(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|word| word.starts_with("sha256:") && word.len() == 71)
        .unwrap_or_else(|| panic!("no key fingerprint in {stdout}"))
        .to_owned()
}

fn run(fixture: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend(["--manifest", "warden.toml"]);
    warden(&all, fixture.dir.path())
}

/// A manifest serving `component` under `verify = { VERIFY }`, with a cache of its own so that
/// "nothing was compiled" can be checked.
fn verified(component: &str, verify: &str) -> Fixture {
    Fixture::new(&format!(
        "[cache]\ndir = \"{{dir}}/cache\"\n\n[plugins.codec]\ncomponent = \"{component}\"\nverify = {{ {verify} }}\n"
    ))
}

/// `check` refuses the plugin with a message containing `expected`, and compiles nothing.
fn assert_refused(fixture: &Fixture, expected: &str) {
    let (code, stdout, stderr) = run(fixture, &["check"]);
    assert_ne!(code, 0, "check must refuse: {stdout}{stderr}");
    assert!(
        stderr.contains("its signature does not satisfy `verify`"),
        "{stderr}"
    );
    assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    assert!(!stderr.contains("compiling"), "nothing compiled: {stderr}");
    let compiled = compiled_artifacts(&fixture.path("cache"));
    assert!(compiled.is_empty(), "no compiled artifact: {compiled:?}");
}

/// `check` accepts the plugin; returns its stdout and stderr.
fn assert_accepted(fixture: &Fixture) -> (String, String) {
    let (code, stdout, stderr) = run(fixture, &["check"]);
    assert_eq!(code, 0, "check must accept: {stdout}{stderr}");
    assert!(stdout.contains("tool        codec__hash"), "{stdout}");
    (stdout, stderr)
}

#[tokio::test]
async fn a_component_pushed_with_sign_is_verified_and_served() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(work.path(), "release");
    let file = unique_component(work.path(), "codec", "signed-push");
    let reference = format!("oci://{}/signed/codec:v1", registry.addr);
    let (code, stdout, stderr) = warden(
        &[
            "push",
            &file.display().to_string(),
            &reference,
            "--sign",
            &private.display().to_string(),
        ],
        work.path(),
    );
    assert_eq!(code, 0, "warden push --sign: {stdout}{stderr}");
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .expect("digest line")
        .to_owned();
    assert!(
        stdout.contains(&format!("(tag {}.sig)", digest.replace(':', "-"))),
        "{stdout}"
    );
    let key = fingerprint(stdout.lines().last().unwrap_or_default());

    // By tag and by digest: both check the signature of the manifest digest pulled, and the
    // provenance names the signer.
    for component in [reference.clone(), format!("{reference}@{digest}")] {
        let fixture = verified(&component, &format!("key = \"{}\"", public.display()));
        let (stdout, stderr) = assert_accepted(&fixture);
        assert!(
            stderr.contains(&format!("signer=key {key}")),
            "the signer is logged: {stderr}"
        );
        assert!(stdout.contains(&format!("key {key}")), "{stdout}");
    }

    // And served: a real MCP client calls the verified component, and the audit log's start
    // record names the signer.
    let fixture = Fixture::new(&format!(
        "[audit]\npath = \"{{dir}}/audit.jsonl\"\n\n[plugins.codec]\ncomponent = \"{reference}\"\nverify = {{ key = \"{}\" }}\n",
        public.display()
    ));
    assert_serves_codec(&fixture).await;
    let starts = fixture.audit_starts("audit.jsonl");
    assert_eq!(
        starts[0]["plugins"][0]["signer"],
        format!("key {key}"),
        "{starts:?}"
    );
}

#[test]
fn unsigned_and_otherwise_signed_registry_components_are_refused() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let (_, trusted) = keypair(work.path(), "trusted");
    let (other_private, _) = keypair(work.path(), "other");
    let policy = format!("key = \"{}\"", trusted.display());

    // Unsigned: no `.sig` tag at all.
    let file = unique_component(work.path(), "codec", "unsigned");
    let (digest, pinned) = push(
        &file,
        &format!("oci://{}/signed/unsigned:v1", registry.addr),
    );
    let fixture = verified(&pinned, &policy);
    assert_refused(&fixture, "unsigned: the registry has no signature");
    assert_refused(&fixture, &format!("{}.sig", digest.replace(':', "-")));

    // Signed by another key: refused, and the message names the key that was wanted.
    let (code, stdout, stderr) = warden(
        &[
            "sign",
            &pinned,
            "--key",
            &other_private.display().to_string(),
        ],
        work.path(),
    );
    assert_eq!(code, 0, "warden sign: {stdout}{stderr}");
    assert_refused(&fixture, "signed, but not by the configured key");
}

#[test]
fn warden_sign_adds_a_signature_beside_the_existing_ones() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let (first_private, first) = keypair(work.path(), "first");
    let (second_private, second) = keypair(work.path(), "second");
    let file = unique_component(work.path(), "codec", "two-signers");
    let (_, pinned) = push(&file, &format!("oci://{}/signed/two:v1", registry.addr));
    for private in [&first_private, &second_private] {
        let (code, stdout, stderr) = warden(
            &["sign", &pinned, "--key", &private.display().to_string()],
            work.path(),
        );
        assert_eq!(code, 0, "warden sign: {stdout}{stderr}");
    }
    for public in [&first, &second] {
        assert_accepted(&verified(
            &pinned,
            &format!("key = \"{}\"", public.display()),
        ));
    }

    // Only what cannot move is signed.
    let tagged = pinned.split('@').next().unwrap_or_default();
    let (code, _, stderr) = warden(
        &[
            "sign",
            tagged,
            "--key",
            &first_private.display().to_string(),
        ],
        work.path(),
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("sign a pinned reference"), "{stderr}");
}

#[test]
fn a_local_file_is_verified_from_its_detached_bundle() {
    let work = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(work.path(), "local");
    let (_, other) = keypair(work.path(), "stranger");
    let file = unique_component(work.path(), "codec", "local-signed");
    let component = file.display().to_string();
    let policy = format!("key = \"{}\"", public.display());

    // No bundle yet: unsigned.
    assert_refused(
        &verified(&component, &policy),
        "unsigned: no signature bundle",
    );

    let (code, stdout, stderr) = warden(
        &["sign", &component, "--key", &private.display().to_string()],
        work.path(),
    );
    assert_eq!(code, 0, "warden sign: {stdout}{stderr}");
    let key = fingerprint(&stdout);
    assert!(Path::new(&format!("{component}.sigstore.json")).exists());
    let (_, stderr) = assert_accepted(&verified(&component, &policy));
    assert!(stderr.contains(&format!("key {key}")), "{stderr}");

    // Another key, or a component changed after signing: refused.
    assert_refused(
        &verified(&component, &format!("key = \"{}\"", other.display())),
        "another key",
    );
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.extend_from_slice(&[0, 2, 1, b'x']); // one more custom section: still a component
    std::fs::write(&file, bytes).expect("write");
    assert_refused(&verified(&component, &policy), "digest");
}

/// Keyless fixtures for `artifact`, made by tests/support/sigstore_fixtures.py into `out`.
fn keyless_fixtures(artifact: &Path, out: &Path) {
    let python = common::python_with_mcp();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/sigstore_fixtures.py");
    let output = Command::new(python)
        .arg(script)
        .args(["--artifact", &artifact.display().to_string()])
        .args(["--out", &out.display().to_string()])
        .args(["--identity", IDENTITY, "--issuer", ISSUER])
        .output()
        .expect("run sigstore_fixtures.py");
    assert!(
        output.status.success(),
        "sigstore_fixtures.py: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn keyless_bundles_are_verified_offline_against_the_trusted_root() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "keyless");
    let fixtures = work.path().join("sigstore");
    keyless_fixtures(&file, &fixtures);
    let component = file.display().to_string();
    let root = fixtures.join("trusted_root.json");
    let policy = |bundle: &str, identity: &str, issuer: &str| {
        format!(
            "identity = \"{identity}\", issuer = \"{issuer}\", trusted_root = \"{}\", bundle = \"{}\"",
            root.display(),
            fixtures.join(bundle).display()
        )
    };

    let (_, stderr) = assert_accepted(&verified(
        &component,
        &policy("good.sigstore.json", IDENTITY, ISSUER),
    ));
    assert!(stderr.contains(IDENTITY), "the signer is logged: {stderr}");
    // Any ref of the release workflow: the signer shown is the certificate's own identity.
    let workflow = IDENTITY.split('@').next().unwrap_or_default();
    let (stdout, _) = assert_accepted(&verified(
        &component,
        &policy("good.sigstore.json", &format!("{workflow}@*"), ISSUER),
    ));
    assert!(stdout.contains(IDENTITY), "{stdout}");

    // The policy is exact: another identity or issuer than the certificate's is refused, and
    // the message names both.
    let elsewhere =
        "https://github.com/warden-test/tools/.github/workflows/other.yml@refs/heads/main";
    assert_refused(
        &verified(&component, &policy("good.sigstore.json", elsewhere, ISSUER)),
        elsewhere,
    );
    assert_refused(
        &verified(
            &component,
            &policy(
                "good.sigstore.json",
                IDENTITY,
                "https://accounts.google.com",
            ),
        ),
        "https://accounts.google.com",
    );
    // Bundles that are wrong in themselves.
    for (bundle, expected) in [
        ("other-identity.sigstore.json", "identity"),
        ("other-issuer.sigstore.json", "issuer"),
        ("other-ca.sigstore.json", "trusted root"),
        ("no-sct.sigstore.json", "SCT"),
        ("bad-set.sigstore.json", "log"),
    ] {
        assert_refused(
            &verified(&component, &policy(bundle, IDENTITY, ISSUER)),
            expected,
        );
    }
    // A good bundle of another file: refused.
    let other = unique_component(work.path(), "codec", "keyless-other");
    assert_refused(
        &verified(
            &other.display().to_string(),
            &policy("good.sigstore.json", IDENTITY, ISSUER),
        ),
        "digest",
    );
}

#[test]
fn verify_tables_that_make_no_sense_are_refused_at_their_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(work.path(), "k");
    let public = public.display().to_string();
    let private = private.display().to_string();
    for (verify, expected) in [
        ("", "no policy"),
        (
            &format!("key = \"{public}\", identity = \"{IDENTITY}\", issuer = \"{ISSUER}\""),
            "two different policies",
        ),
        (
            &format!("identity = \"{IDENTITY}\", issuer = \"{ISSUER}\""),
            "needs `trusted_root`",
        ),
        (
            &format!("identity = \"{IDENTITY}\""),
            "both `identity` and `issuer`",
        ),
        (
            &format!("identity = \"https://github.com/warden-test/tools*\", issuer = \"{ISSUER}\""),
            "a `*` may only end the identity, after `/` or `@`",
        ),
        (
            &format!(
                "identity = \"{IDENTITY}\", issuer = \"{ISSUER}\", trusted_root = \"{public}\""
            ),
            "is not a Sigstore trusted root",
        ),
        (&format!("key = \"{private}\""), "expected `PUBLIC KEY`"),
        ("key = \"missing.pub\"", "not found"),
        (&format!("key = \"{public}\", colour = 1"), "colour"),
    ] {
        let fixture = verified("{codec}", verify);
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_eq!(code, 2, "{verify}: {stdout}{stderr}");
        assert!(
            stderr.contains(expected),
            "{verify}: {expected:?} in:\n{stderr}"
        );
        assert!(stderr.contains("warden.toml:"), "at its line: {stderr}");
    }
}

#[tokio::test]
async fn a_signature_copied_from_another_artifact_is_refused() {
    let registry = registry();
    let work = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(work.path(), "replayed");
    let repository = format!("oci://{}/signed/replay", registry.addr);
    let signed = unique_component(work.path(), "codec", "replay-signed");
    let (signed_digest, _) = push(&signed, &format!("{repository}:signed"));
    let (code, stdout, stderr) = warden(
        &[
            "sign",
            &format!("{repository}@{signed_digest}"),
            "--key",
            &private.display().to_string(),
        ],
        work.path(),
    );
    assert_eq!(code, 0, "warden sign: {stdout}{stderr}");
    let target = unique_component(work.path(), "codec", "replay-target");
    let (target_digest, target_pinned) = push(&target, &format!("{repository}:target"));

    // Copy the signed artifact's `.sig` manifest to the target's `.sig` tag, byte for byte.
    common::install_crypto();
    let http = reqwest::Client::new();
    let base = format!("http://{}/v2/signed/replay/manifests", registry.addr);
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let sig = http
        .get(format!("{base}/{}.sig", signed_digest.replace(':', "-")))
        .header("Accept", media_type)
        .send()
        .await
        .expect("get .sig");
    assert!(sig.status().is_success(), "{}", sig.status());
    let body = sig.bytes().await.expect(".sig body");
    let put = http
        .put(format!("{base}/{}.sig", target_digest.replace(':', "-")))
        .header("Content-Type", media_type)
        .body(body)
        .send()
        .await
        .expect("put .sig");
    assert!(put.status().is_success(), "{}", put.status());

    // The key's signature is genuine, but of the other artifact.
    assert_refused(
        &verified(&target_pinned, &format!("key = \"{}\"", public.display())),
        &format!("signs {signed_digest}, not {target_digest}"),
    );
}

#[test]
fn signatures_required_refuses_a_plugin_without_a_policy() {
    let work = tempfile::tempdir().expect("tempdir");
    let (private, public) = keypair(work.path(), "required");
    let file = unique_component(work.path(), "codec", "required");
    let component = file.display().to_string();
    let (code, stdout, stderr) = warden(
        &["sign", &component, "--key", &private.display().to_string()],
        work.path(),
    );
    assert_eq!(code, 0, "warden sign: {stdout}{stderr}");
    let signed = format!(
        "[plugins.codec]\ncomponent = \"{component}\"\nverify = {{ key = \"{}\" }}\n",
        public.display()
    );
    let fixture = Fixture::new(&format!(
        "[server]\nsignatures = \"required\"\n\n{signed}\n[plugins.plain]\ncomponent = \"{{codec}}\"\n"
    ));
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "plugin `plain` has no `verify` policy, and [server] signatures = \"required\""
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("plugin `codec` has no"), "{stderr}");

    let fixture = Fixture::new(&format!("[server]\nsignatures = \"required\"\n\n{signed}"));
    let (code, stdout, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 0, "every plugin is verified: {stdout}{stderr}");

    let fixture = Fixture::new("[server]\nsignatures = \"sometimes\"\n");
    let (code, _, stderr) = run(&fixture, &["check"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("expected \"optional\" or \"required\""),
        "{stderr}"
    );
}

/// The interpreter of a virtualenv with sigstore-python (the reference verifier), created once
/// under `CARGO_TARGET_TMPDIR` and reused.
fn python_with_sigstore() -> PathBuf {
    common::python_venv("python-sigstore-venv", "sigstore==4.5.1").join("python")
}

#[test]
fn warden_and_sigstore_python_agree_on_every_keyless_fixture() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = unique_component(work.path(), "codec", "differential");
    let fixtures = work.path().join("sigstore");
    keyless_fixtures(&file, &fixtures);
    let root = fixtures.join("trusted_root.json");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".sigstore.json"))
        .collect();
    bundles.sort();
    assert!(bundles.len() >= 8, "{bundles:?}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/sigstore_verify.py");
    let output = Command::new(python_with_sigstore())
        .arg(script)
        .args([&root, &file])
        .args([IDENTITY, ISSUER])
        .args(&bundles)
        .output()
        .expect("run sigstore_verify.py");
    let verdicts = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{verdicts}{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let component = file.display().to_string();
    for bundle in &bundles {
        let name = bundle.file_name().unwrap_or_default().to_string_lossy();
        let reference = verdicts
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no verdict for {name}: {verdicts}"));
        let fixture = verified(
            &component,
            &format!(
                "identity = \"{IDENTITY}\", issuer = \"{ISSUER}\", trusted_root = \"{}\", bundle = \"{}\"",
                root.display(),
                bundle.display()
            ),
        );
        let (code, stdout, stderr) = run(&fixture, &["check"]);
        assert_eq!(
            code == 0,
            reference == "OK",
            "{name}: sigstore-python says {reference}; warden check:\n{stdout}{stderr}"
        );
    }
    assert!(verdicts.contains("good.sigstore.json OK"), "{verdicts}");
}
