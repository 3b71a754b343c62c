//! Components from OCI registries: pull an `oci://` reference into the cache, checked, and push
//! a component as a wasm OCI artifact.
//!
//! A pull resolves the reference to a manifest digest, fetches the manifest by that digest and
//! checks its SHA-256 itself, requires the wasm artifact layout (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), then streams the layer
//! with a size cap into a temporary file in `CACHE/oci/`, checking its SHA-256 against the
//! layer digest before the file is renamed to `sha256-<hex>.wasm`. Nothing reads the component
//! before that check; the caller then opens the file like a local one, pinned to that digest.
//!
//! Registries are reached over HTTPS, or plain HTTP for a loopback registry only. Credentials:
//! anonymous, or HTTP basic from `WARDEN_OCI_USERNAME` and `WARDEN_OCI_PASSWORD` when both are
//! set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};

use crate::manifest::OciRef;
use crate::signing::cosign::{self, SignatureLayer};

/// The config media type of a wasm OCI artifact (CNCF TAG-Runtime layout).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a wasm component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The largest component pulled (and pushed): 256 MiB.
pub const MAX_COMPONENT_SIZE: u64 = 256 << 20;
/// The largest manifest read: 64 KiB.
const MAX_MANIFEST_SIZE: usize = 64 << 10;

/// What can go wrong pulling or pushing.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{reference}: the registry refused or failed: {message}")]
    Registry { reference: String, message: String },
    #[error(
        "{reference}: the registry served manifest {actual}, not the pinned {expected}; refusing it"
    )]
    Digest {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{reference}: the tag moved: warden.lock has {locked}, the registry now has {actual}; review the new component, then run `warden lock` to accept it"
    )]
    Moved {
        reference: String,
        locked: String,
        actual: String,
    },
    #[error("{reference}: not a wasm component artifact: {message}")]
    Layout { reference: String, message: String },
    #[error(
        "{reference}: the component blob's SHA-256 is {actual}, not its digest {expected}; refusing it"
    )]
    Blob {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{reference}: the registry sent more bytes than the layer's size ({size}); refusing it"
    )]
    Overlong { reference: String, size: i64 },
    #[error("{reference}: the component is larger than {MAX_COMPONENT_SIZE} bytes")]
    TooLarge { reference: String },
    #[error("the OCI cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A component pulled into the cache.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The cached component file, `CACHE/oci/sha256-<hex>.wasm`.
    pub path: PathBuf,
    /// Its SHA-256 digest (checked).
    pub sha256: [u8; 32],
    /// The manifest digest the reference resolved to, `sha256:<hex>`.
    pub manifest_digest: String,
}

/// What a push published.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// The reference to write in a manifest, with the digest pinned.
    pub pinned: String,
}

/// Pull `reference` into `cache_dir/oci/`. With `locked` (the manifest digest `warden.lock`
/// recorded for a tag), a tag that now resolves elsewhere is refused. Blocking: runs its own
/// small runtime on a thread of its own, so it may be called from anywhere.
pub fn pull(
    reference: &OciRef,
    cache_dir: &Path,
    locked: Option<&str>,
) -> Result<Pulled, OciError> {
    let dir = cache_dir.join("oci");
    block_on(pull_async(reference, &dir, locked))
}

/// Push the component `file` to `reference` (a tag) as a wasm OCI artifact. `created` is the
/// config's timestamp (fix it for reproducible digests).
pub fn push(file: &Path, reference: &OciRef, created: SystemTime) -> Result<Pushed, OciError> {
    let bytes = std::fs::read(file).map_err(|source| OciError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    if bytes.len() as u64 > MAX_COMPONENT_SIZE {
        return Err(OciError::TooLarge {
            reference: reference.to_string(),
        });
    }
    block_on(push_async(bytes, reference, created))
}

/// The cosign signature layers of manifest `digest` in `reference`'s repository (the
/// `sha256-<hex>.sig` tag, [`cosign`]); none when there is no such tag. Each payload is read
/// size-capped and digest-checked; nothing here says whether any signature is valid.
pub fn signatures(reference: &OciRef, digest: &str) -> Result<Vec<SignatureLayer>, OciError> {
    block_on(signatures_async(reference, digest))
}

/// Add `layer` to the signatures of manifest `digest` in `reference`'s repository, keeping
/// those already there (as cosign does).
pub fn push_signature(
    reference: &OciRef,
    digest: &str,
    layer: SignatureLayer,
) -> Result<(), OciError> {
    block_on(push_signature_async(reference, digest, layer))
}

fn block_on<T: Send>(
    future: impl std::future::Future<Output = Result<T, OciError>> + Send,
) -> Result<T, OciError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| OciError::Registry {
                        reference: String::new(),
                        message: format!("cannot start the network runtime: {e}"),
                    })?;
                runtime.block_on(future)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(OciError::Registry {
                    reference: String::new(),
                    message: "the pull thread panicked".into(),
                })
            })
    })
}

/// A client for `reference`'s registry: HTTPS checked against the Mozilla roots
/// (`webpki-root-certs`, as warden's other outbound TLS), or plain HTTP to a loopback registry.
fn client(reference: &OciRef) -> Result<Client, OciError> {
    // reqwest's rustls needs a process-wide provider; warden builds ring, not aws-lc.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if reference.is_loopback() {
        ClientProtocol::HttpsExcept(vec![reference.registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate {
            encoding: CertificateEncoding::Der,
            data: der.to_vec(),
        })
        .collect();
    // `try_from`, not `new`: `new` falls back to a default configuration on error.
    Client::try_from(ClientConfig {
        protocol,
        tls_certs_only: roots,
        // An image index is refused, not resolved to some platform's image.
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .map_err(registry_error(reference))
}

fn auth() -> RegistryAuth {
    match (
        std::env::var("WARDEN_OCI_USERNAME"),
        std::env::var("WARDEN_OCI_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) if !user.is_empty() => RegistryAuth::Basic(user, password),
        _ => RegistryAuth::Anonymous,
    }
}

fn registry_error(
    reference: &OciRef,
) -> impl Fn(oci_client::errors::OciDistributionError) -> OciError {
    let reference = reference.to_string();
    move |e| OciError::Registry {
        reference: reference.clone(),
        message: e.to_string(),
    }
}

fn sha256_name(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn pull_async(
    reference: &OciRef,
    dir: &Path,
    locked: Option<&str>,
) -> Result<Pulled, OciError> {
    let shown = reference.to_string();
    let client = client(reference)?;
    let auth = auth();
    let error = registry_error(reference);

    // Resolve to a manifest digest: the pinned one, or what the tag names now.
    let digest = match &reference.digest {
        Some(digest) => digest.clone(),
        None => {
            let tagged = Reference::with_tag(
                reference.registry.clone(),
                reference.repository.clone(),
                reference.tag.clone().unwrap_or_default(),
            );
            let digest = client
                .fetch_manifest_digest(&tagged, &auth)
                .await
                .map_err(&error)?;
            if let Some(locked) = locked
                && locked != digest
            {
                return Err(OciError::Moved {
                    reference: shown,
                    locked: locked.to_owned(),
                    actual: digest,
                });
            }
            digest
        }
    };
    let pinned = Reference::with_digest(
        reference.registry.clone(),
        reference.repository.clone(),
        digest.clone(),
    );
    let (bytes, _) = client
        .pull_manifest_raw(&pinned, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .map_err(&error)?;
    // Checked here as well as in oci-client: the manifest names the blob we trust.
    let actual = sha256_name(&bytes);
    if actual != digest {
        return Err(OciError::Digest {
            reference: shown,
            expected: digest,
            actual,
        });
    }
    let layout = |message: String| OciError::Layout {
        reference: shown.clone(),
        message,
    };
    let manifest = image_manifest(&bytes).map_err(layout)?;
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(layout(format!(
            "its config is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}`",
            manifest.config.media_type
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(layout(format!(
            "it has {} layers, not one",
            manifest.layers.len()
        )));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(layout(format!(
            "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        )));
    }
    let Some(hex_digest) = layer
        .digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return Err(layout(format!(
            "its layer digest `{}` is not sha256",
            layer.digest
        )));
    };
    if layer.size < 0 || layer.size as u64 > MAX_COMPONENT_SIZE {
        return Err(OciError::TooLarge { reference: shown });
    }
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|e| layout(e.to_string()))?;

    let cache_error = |source| OciError::Cache {
        path: dir.to_path_buf(),
        source,
    };
    create_private_dir(dir).map_err(cache_error)?;
    let path = dir.join(format!("sha256-{}.wasm", hex::encode(expected)));
    // A cached copy is used only if it still has its digest.
    if let Ok(cached) = std::fs::read(&path)
        && <[u8; 32]>::from(Sha256::digest(&cached)) == expected
    {
        return Ok(Pulled {
            path,
            sha256: expected,
            manifest_digest: digest,
        });
    }

    let mut stream = client
        .pull_blob_stream(&pinned, layer)
        .await
        .map_err(&error)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(cache_error)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // oci-client's own digest check ends the stream with an error: ours, below, says
            // which digest was expected and which arrived.
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        };
        size += chunk.len() as u64;
        if size > MAX_COMPONENT_SIZE || size > layer.size as u64 {
            return Err(OciError::Overlong {
                reference: shown,
                size: layer.size,
            });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).map_err(cache_error)?;
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != expected && (failed.is_none() || size == layer.size as u64) {
        return Err(OciError::Blob {
            reference: shown,
            expected: layer.digest.clone(),
            actual: format!("sha256:{}", hex::encode(actual)),
        });
    }
    if let Some(message) = failed {
        return Err(OciError::Registry {
            reference: shown,
            message,
        });
    }
    file.as_file().sync_all().map_err(cache_error)?;
    file.persist(&path).map_err(|e| cache_error(e.error))?;
    Ok(Pulled {
        path,
        sha256: expected,
        manifest_digest: digest,
    })
}

/// An OCI image manifest of at most [`MAX_MANIFEST_SIZE`] bytes.
fn image_manifest(bytes: &[u8]) -> Result<OciImageManifest, String> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err("its manifest is larger than 64 KiB".into());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| format!("its manifest is not an OCI image manifest: {e}"))
}

/// Whether a registry's error says the manifest does not exist.
fn is_not_found(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    match error {
        E::ImageManifestNotFoundError(_) | E::ServerError { code: 404, .. } => true,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

/// The `.sig` manifest of `digest`, if the registry has one.
async fn signature_manifest(
    client: &Client,
    reference: &OciRef,
    digest: &str,
) -> Result<(Reference, Option<OciImageManifest>), OciError> {
    let tag = Reference::with_tag(
        reference.registry.clone(),
        reference.repository.clone(),
        cosign::signature_tag(digest),
    );
    let bytes = match client
        .pull_manifest_raw(
            &tag,
            &auth(),
            &[OCI_IMAGE_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
        )
        .await
    {
        Ok((bytes, _)) => bytes,
        Err(e) if is_not_found(&e) => return Ok((tag, None)),
        Err(e) => return Err(registry_error(reference)(e)),
    };
    let manifest = image_manifest(&bytes).map_err(|message| OciError::Layout {
        reference: tag.whole(),
        message,
    })?;
    Ok((tag, Some(manifest)))
}

/// The manifest media type older cosign releases wrote signatures with.
const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

async fn signatures_async(
    reference: &OciRef,
    digest: &str,
) -> Result<Vec<SignatureLayer>, OciError> {
    let client = client(reference)?;
    let (tag, manifest) = signature_manifest(&client, reference, digest).await?;
    let Some(manifest) = manifest else {
        return Ok(Vec::new());
    };
    let mut layers = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|layer| layer.media_type == cosign::SIMPLE_SIGNING_MEDIA_TYPE)
        .take(cosign::MAX_SIGNATURES)
    {
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(cosign::SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        let payload = small_blob(&client, &tag, layer, cosign::MAX_PAYLOAD).await?;
        layers.push(SignatureLayer {
            payload,
            signature: signature.clone(),
        });
    }
    Ok(layers)
}

/// A blob of at most `max` bytes, read into memory and checked against its digest.
async fn small_blob(
    client: &Client,
    reference: &Reference,
    layer: &oci_client::manifest::OciDescriptor,
    max: u64,
) -> Result<Vec<u8>, OciError> {
    let shown = reference.whole();
    if layer.size < 0 || layer.size as u64 > max {
        return Err(OciError::Layout {
            reference: shown,
            message: format!("a signature layer is larger than {max} bytes"),
        });
    }
    let mut stream = client
        .pull_blob_stream(reference, layer)
        .await
        .map_err(|e| OciError::Registry {
            reference: shown.clone(),
            message: e.to_string(),
        })?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| OciError::Registry {
            reference: shown.clone(),
            message: e.to_string(),
        })?;
        if (bytes.len() + chunk.len()) as u64 > layer.size as u64 {
            return Err(OciError::Overlong {
                reference: shown,
                size: layer.size,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let actual = sha256_name(&bytes);
    if actual != layer.digest {
        return Err(OciError::Blob {
            reference: shown,
            expected: layer.digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

async fn push_signature_async(
    reference: &OciRef,
    digest: &str,
    layer: SignatureLayer,
) -> Result<(), OciError> {
    let client = client(reference)?;
    let auth = auth();
    let error = registry_error(reference);
    client
        .store_auth_if_needed(&reference.registry, &auth)
        .await;
    let (tag, existing) = signature_manifest(&client, reference, digest).await?;
    let config = Config::new(b"{}".to_vec(), OCI_CONFIG_MEDIA_TYPE.to_owned(), None);
    let annotations = [(cosign::SIGNATURE_ANNOTATION.to_owned(), layer.signature)];
    let layer = ImageLayer::new(
        layer.payload,
        cosign::SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
        Some(annotations.into_iter().collect()),
    );
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
    if let Some(existing) = existing {
        // cosign appends: the signatures already there stay, ours goes last.
        let ours = manifest.layers.pop();
        manifest.layers = existing.layers;
        manifest.layers.extend(ours);
        manifest.config = existing.config;
    } else {
        client
            .push_blob(&tag, config.data.clone(), &config.sha256_digest())
            .await
            .map_err(&error)?;
    }
    client
        .push_blob(&tag, layer.data.clone(), &layer.sha256_digest())
        .await
        .map_err(&error)?;
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    client
        .push_manifest_raw(
            &tag,
            bytes,
            http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(&error)?;
    Ok(())
}

/// The config media type of a cosign signature manifest (its config blob is `{}`).
const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Creates `dir` (0700) and its parents if missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

async fn push_async(
    bytes: Vec<u8>,
    reference: &OciRef,
    created: SystemTime,
) -> Result<Pushed, OciError> {
    let client = client(reference)?;
    let auth = auth();
    let error = registry_error(reference);
    let (exports, imports) = world_names(&bytes);
    let layer = ImageLayer::new(bytes, WASM_LAYER_MEDIA_TYPE.to_owned(), None);
    let layer_digest = layer.sha256_digest();
    let config = serde_json::json!({
        "created": crate::audit::rfc3339(created),
        "author": null,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {"exports": exports, "imports": imports, "target": null},
    });
    let config = Config::new(
        serde_json::to_vec(&config).unwrap_or_default(),
        WASM_CONFIG_MEDIA_TYPE.to_owned(),
        None,
    );
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_owned());
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = sha256_name(&manifest_bytes);

    let target = Reference::with_tag(
        reference.registry.clone(),
        reference.repository.clone(),
        reference.tag.clone().unwrap_or_else(|| "latest".into()),
    );
    client
        .store_auth_if_needed(target.resolve_registry(), &auth)
        .await;
    client
        .push_blob(&target, layer.data.clone(), &layer_digest)
        .await
        .map_err(&error)?;
    client
        .push_blob(&target, config.data.clone(), &config.sha256_digest())
        .await
        .map_err(&error)?;
    client
        .push_manifest_raw(
            &target,
            manifest_bytes,
            http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(&error)?;
    let pinned = OciRef {
        digest: Some(digest.clone()),
        ..reference.clone()
    };
    Ok(Pushed {
        digest,
        pinned: pinned.to_string(),
    })
}

/// The names of a component's world's exports and imports, for the artifact's config (empty
/// when it cannot be decoded: the config is informational).
fn world_names(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let Ok(wit_component::DecodedWasm::Component(resolve, world)) = wit_component::decode(bytes)
    else {
        return (Vec::new(), Vec::new());
    };
    let world = &resolve.worlds[world];
    let exports = world.exports.keys().map(|key| resolve.name_world_key(key));
    let imports = world.imports.keys().map(|key| resolve.name_world_key(key));
    (exports.collect(), imports.collect())
}
