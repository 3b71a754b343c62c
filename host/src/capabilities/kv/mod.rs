//! The key-value capability: `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`), the
//! interface wasmtime, Spin and wasmCloud serve, so components written for them run unchanged.
//!
//! A plugin's `kv` grant gives it one store: its own (named after it), or a shared one that
//! every plugin using it names (`store = "NAME"`). `open` accepts `""`, `"default"` or that
//! name; anything else is `no-such-store`, and a plugin without a grant gets `access-denied`
//! (the interface is linked for every plugin, as `wasi:http` is).
//!
//! Stores live in one backend per process, chosen by `[kv]`: an embedded redb file
//! ([`embedded`]) or a Redis server ([`redis`]). Each write checks the store's quota, key count
//! and value size in the same atomic step as the write. Refusals reach the plugin as
//! `error::other` with a message that says which limit and by how much; backend failures are
//! logged for the operator and reach the plugin as a plain "unavailable".
//!
//! Each call counts its operations and bytes for the audit record ([`Kv`]'s `usage`); values
//! and keys are never recorded.

mod backend;
mod embedded;
mod redis;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use self::backend::{Backend, KvError, Space, check_key, check_value};
use super::CapabilityError;
use super::capability::{
    CallBuilder, CallView, Capability, Effects, GrantWarning, Imports, Link, Slots,
};
use crate::manifest::{KvBackend, Manifest, Plugin};

pub use self::backend::{MAX_KEY, PAGE};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// The import prefix of the interface.
const IMPORT_PREFIX: &str = "wasi:keyvalue/";

/// The key-value capability.
pub struct Kv;

/// The backend the process's stores live in, and the settings it was opened with (a host-wide
/// service, kept by a reload that does not change `[kv]`).
struct KvService {
    settings: KvBackend,
    backend: Arc<dyn Backend>,
}

/// A plugin's store, opened once when the plugin is loaded.
struct KvOpened(Arc<Granted>);

/// A store and the backend it lives in.
#[derive(Debug)]
struct Granted {
    backend: Arc<dyn Backend>,
    space: Space,
}

/// One call's state: its store, if granted, and what it did.
#[derive(Default)]
pub struct KvCall {
    store: Option<Arc<Granted>>,
    /// Operations on keys (each key of a batch counts).
    ops: u64,
    /// Bytes of values and keys returned to the plugin.
    read_bytes: u64,
    /// Bytes of keys and values written.
    written_bytes: u64,
}

/// An open store, as the plugin holds it. Its operations act on the call's store.
pub struct Bucket;

impl Kv {
    /// The one line of `warden check` for a grant.
    fn describe(plugin: &Plugin) -> Option<String> {
        let grant = plugin.kv.as_ref()?;
        let kind = if grant.store.is_some() {
            "shared"
        } else {
            "private"
        };
        Some(format!(
            "grant kv    {kind} store {:?}, quota {}, max_keys {}, max_value {}",
            grant.store_name(&plugin.name),
            backend::human(grant.quota),
            grant.max_keys,
            backend::human(grant.max_value),
        ))
    }
}

impl Capability for Kv {
    fn name(&self) -> &'static str {
        "kv"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        if imports.any(&[IMPORT_PREFIX]) {
            vec!["kv: a key-value store (wasi:keyvalue)"]
        } else {
            Vec::new()
        }
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        Kv::describe(plugin).into_iter().collect()
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, serde_json::Value)> {
        let kv = plugin.kv.as_ref().map(|grant| {
            serde_json::json!({
                "store": grant.store_name(&plugin.name),
                "shared": grant.store.is_some(),
                "quota": grant.quota,
                "max_keys": grant.max_keys,
                "max_value": grant.max_value,
            })
        });
        vec![("kv", serde_json::json!(kv))]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        match (plugin.kv.is_some(), imports.any(&[IMPORT_PREFIX])) {
            (true, false) => vec![GrantWarning::new(
                "unused-grant:kv",
                "is granted a key-value store (kv) but imports no wasi:keyvalue: it cannot use it",
            )],
            (false, true) => vec![GrantWarning::new(
                "ungranted-import:keyvalue",
                "imports wasi:keyvalue but is granted no store (kv): every open fails with \
                 access-denied",
            )],
            _ => Vec::new(),
        }
    }

    fn effects(&self, plugin: &Plugin, imports: Imports<'_>) -> Effects {
        Effects {
            writes: plugin.kv.is_some() && imports.any(&[IMPORT_PREFIX]),
            open_world: false,
        }
    }

    fn start(
        &self,
        manifest: &Manifest,
        previous: Option<&Slots>,
        services: &mut Slots,
    ) -> Result<(), CapabilityError> {
        if manifest.plugins.iter().all(|plugin| plugin.kv.is_none()) {
            return Ok(());
        }
        let settings = &manifest.kv.backend;
        if let Some(kept) = previous
            .and_then(|p| p.get::<KvService>())
            .filter(|kept| &kept.settings == settings)
        {
            services.insert(KvService {
                settings: kept.settings.clone(),
                backend: kept.backend.clone(),
            });
            return Ok(());
        }
        let failed = |message: String| CapabilityError::Failed {
            capability: "kv",
            message,
        };
        let backend: Arc<dyn Backend> = match settings {
            KvBackend::File(path) => Arc::new(embedded::Embedded::new(path, manifest.kv.sync)),
            KvBackend::Redis { url, prefix } => {
                Arc::new(redis::Redis::new(url.expose(), prefix).map_err(failed)?)
            }
        };
        services.insert(KvService {
            settings: settings.clone(),
            backend,
        });
        Ok(())
    }

    fn open(
        &self,
        plugin: &Plugin,
        services: &Slots,
        opened: &mut Slots,
    ) -> Result<(), CapabilityError> {
        let Some(grant) = &plugin.kv else {
            return Ok(());
        };
        let service = services
            .get::<KvService>()
            .ok_or_else(|| CapabilityError::Failed {
                capability: "kv",
                message: "the key-value backend was not started".to_owned(),
            })?;
        opened.insert(KvOpened(Arc::new(Granted {
            backend: service.backend.clone(),
            space: Space::new(&plugin.name, grant),
        })));
        Ok(())
    }

    fn stop(&self, services: &Slots) {
        if let Some(service) = services.get::<KvService>() {
            service.backend.stop();
        }
    }

    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        let store = call.opened.get::<KvOpened>().map(|o| o.0.clone());
        if store.is_some() {
            call.slots.insert(KvCall {
                store,
                ..KvCall::default()
            });
        }
        Ok(())
    }

    fn usage(&self, call: &Slots) -> Option<serde_json::Value> {
        let kv = call.get::<KvCall>().filter(|kv| kv.ops > 0)?;
        Some(serde_json::json!({
            "ops": kv.ops,
            "read_bytes": kv.read_bytes,
            "written_bytes": kv.written_bytes,
        }))
    }
}

impl<T: CallView> Link<T> for Kv {
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        bindings::Imports::add_to_linker::<T, KvData>(linker, view::<T>)
    }
}

/// The host functions' view of a call.
pub struct KvView<'a> {
    table: &'a mut ResourceTable,
    call: Option<&'a mut KvCall>,
}

/// Marks [`KvView`] as the data the bindings' host functions get.
struct KvData;

impl HasData for KvData {
    type Data<'a> = KvView<'a>;
}

fn view<T: CallView>(state: &mut T) -> KvView<'_> {
    let parts = state.parts();
    KvView {
        table: parts.table,
        call: parts.slots.get_mut::<KvCall>(),
    }
}

/// What the plugin is told when the backend failed: nothing of the host.
const UNAVAILABLE: &str = "the key-value store is unavailable right now; try again later";

impl KvView<'_> {
    /// The call's store, for an operation on `bucket` (which must be the call's own), and
    /// count the operation.
    fn store(&mut self, bucket: &Resource<Bucket>, ops: u64) -> wasmtime::Result<Arc<Granted>> {
        self.table.get(bucket)?;
        let call = self
            .call
            .as_deref_mut()
            .ok_or_else(|| wasmtime::format_err!("a bucket exists without a kv grant"))?;
        call.ops += ops;
        call.store
            .clone()
            .ok_or_else(|| wasmtime::format_err!("a bucket exists without a kv grant"))
    }

    fn read(&mut self, bytes: usize) {
        if let Some(call) = self.call.as_deref_mut() {
            call.read_bytes += bytes as u64;
        }
    }

    fn wrote(&mut self, bytes: usize) {
        if let Some(call) = self.call.as_deref_mut() {
            call.written_bytes += bytes as u64;
        }
    }
}

/// The plugin's error for `error`; a backend failure is logged, not passed on.
fn plugin_error(store: &Granted, error: KvError) -> store::Error {
    match error {
        KvError::Refused(message) => store::Error::Other(message),
        KvError::Backend(detail) => {
            tracing::warn!(store = %store.space.name, "kv: {detail}");
            store::Error::Other(UNAVAILABLE.to_owned())
        }
    }
}

/// Set `key` to `value` after the checks every backend shares.
async fn set_one(store: &Granted, key: &str, value: Vec<u8>) -> Result<(), KvError> {
    check_key(key)?;
    check_value(&store.space, &value)?;
    store.backend.set(&store.space, key, value).await
}

impl store::Host for KvView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, store::Error>> {
        let Some(store) = self.call.as_deref().and_then(|call| call.store.clone()) else {
            return Ok(Err(store::Error::AccessDenied));
        };
        if !identifier.is_empty() && identifier != "default" && identifier != store.space.name {
            return Ok(Err(store::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket)?))
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        let store = self.store(&bucket, 1)?;
        match store.backend.get(&store.space, &key).await {
            Ok(value) => {
                self.read(value.as_ref().map_or(0, Vec::len));
                Ok(Ok(value))
            }
            Err(e) => Ok(Err(plugin_error(&store, e))),
        }
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let store = self.store(&bucket, 1)?;
        let written = key.len() + value.len();
        match set_one(&store, &key, value).await {
            Ok(()) => {
                self.wrote(written);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(plugin_error(&store, e))),
        }
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let store = self.store(&bucket, 1)?;
        Ok(store
            .backend
            .delete(&store.space, &key)
            .await
            .map_err(|e| plugin_error(&store, e)))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        let store = self.store(&bucket, 1)?;
        Ok(store
            .backend
            .exists(&store.space, &key)
            .await
            .map_err(|e| plugin_error(&store, e)))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        let store = self.store(&bucket, 1)?;
        match store.backend.list(&store.space, cursor).await {
            Ok((keys, cursor)) => {
                self.read(keys.iter().map(String::len).sum());
                Ok(Ok(store::KeyResponse { keys, cursor }))
            }
            Err(e) => Ok(Err(plugin_error(&store, e))),
        }
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, store::Error>> {
        let store = self.store(&bucket, 1)?;
        if let Err(e) = check_key(&key) {
            return Ok(Err(plugin_error(&store, e)));
        }
        match store.backend.increment(&store.space, &key, delta).await {
            Ok(value) => {
                self.wrote(key.len() + value.to_string().len());
                Ok(Ok(value))
            }
            Err(e) => Ok(Err(plugin_error(&store, e))),
        }
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, store::Error>> {
        let store = self.store(&bucket, keys.len() as u64)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match store.backend.get(&store.space, &key).await {
                Ok(value) => {
                    self.read(value.as_ref().map_or(0, Vec::len));
                    out.push(value.map(|value| (key, value)));
                }
                Err(e) => return Ok(Err(plugin_error(&store, e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let store = self.store(&bucket, key_values.len() as u64)?;
        for (key, value) in key_values {
            let written = key.len() + value.len();
            if let Err(e) = set_one(&store, &key, value).await {
                return Ok(Err(plugin_error(&store, e)));
            }
            self.wrote(written);
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let store = self.store(&bucket, keys.len() as u64)?;
        for key in keys {
            if let Err(e) = store.backend.delete(&store.space, &key).await {
                return Ok(Err(plugin_error(&store, e)));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plugins of a manifest with a component file that exists.
    fn plugins(grants: &str) -> Vec<Plugin> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("c.wasm"), b"\0asm").expect("write");
        let text = grants.replace("{c}", &dir.path().join("c.wasm").display().to_string());
        Manifest::parse(&text, &dir.path().join("warden.toml"))
            .expect("manifest")
            .plugins
    }

    #[test]
    fn grants_are_described_warned_about_and_annotated() {
        let plugins = plugins(
            "[plugins.notes]\ncomponent = \"{c}\"\n\
             kv = { quota = \"10MiB\", max_keys = 10_000, max_value = \"1MiB\" }\n\
             [plugins.team]\ncomponent = \"{c}\"\nkv = { store = \"shared\", quota = \"1KiB\" }\n\
             [plugins.none]\ncomponent = \"{c}\"\n",
        );
        let (notes, team, none) = (&plugins[0], &plugins[1], &plugins[2]);
        let imports = ["wasi:keyvalue/store@0.2.0-draft".to_owned()];
        let kv_imports = Imports(&imports);
        let no_imports = Imports(&[]);

        assert_eq!(
            Kv.summary(notes),
            ["grant kv    private store \"notes\", quota 10 MiB, max_keys 10000, max_value 1 MiB"]
        );
        assert_eq!(
            Kv.summary(team),
            ["grant kv    shared store \"shared\", quota 1 KiB, max_keys 10000, max_value 1 MiB"]
        );
        assert!(Kv.summary(none).is_empty());

        assert_eq!(
            Kv.offers(kv_imports),
            ["kv: a key-value store (wasi:keyvalue)"]
        );
        assert!(Kv.offers(no_imports).is_empty());

        assert!(Kv.warnings(notes, kv_imports).is_empty());
        let unused = Kv.warnings(notes, no_imports);
        assert_eq!(unused.len(), 1);
        assert_eq!(unused[0].code, "unused-grant:kv");
        let ungranted = Kv.warnings(none, kv_imports);
        assert_eq!(ungranted.len(), 1);
        assert_eq!(ungranted[0].code, "ungranted-import:keyvalue");
        for code in ["unused-grant:kv", "ungranted-import:keyvalue"] {
            assert!(crate::manifest::WARNING_CODES.contains(&code));
        }

        let writes = Effects {
            writes: true,
            open_world: false,
        };
        assert_eq!(Kv.effects(notes, kv_imports), writes);
        assert_eq!(Kv.effects(notes, no_imports), Effects::default());
        assert_eq!(Kv.effects(none, kv_imports), Effects::default());
    }

    #[test]
    fn the_store_is_started_only_when_granted_and_kept_across_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("c.wasm"), b"\0asm").expect("write");
        let text = |kv: &str| {
            format!(
                "[kv]\npath = \"state/kv.redb\"\n[plugins.notes]\ncomponent = \"c.wasm\"\n{kv}\n"
            )
        };
        let path = dir.path().join("warden.toml");
        let bare = Manifest::parse(&text(""), &path).expect("manifest");
        let mut services = Slots::default();
        Kv.start(&bare, None, &mut services).expect("start");
        assert!(services.get::<KvService>().is_none());
        assert!(
            !dir.path().join("state").exists(),
            "created without a grant"
        );

        let granted = Manifest::parse(&text("kv = {}"), &path).expect("manifest");
        let mut first = Slots::default();
        Kv.start(&granted, None, &mut first).expect("start");
        assert!(!dir.path().join("state").exists(), "opened before any use");
        let space = Space::new("notes", granted.plugins[0].kv.as_ref().expect("grant"));
        let backend = &first.get::<KvService>().expect("started").backend;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(backend.set(&space, "k", b"v".to_vec()))
            .expect("set");
        assert!(dir.path().join("state/kv.redb").is_file());

        // redb cannot open its file twice: a reload must keep the open database.
        let mut second = Slots::default();
        Kv.start(&granted, Some(&first), &mut second)
            .expect("a reload keeps the store");
        let kept = &second.get::<KvService>().expect("kept").backend;
        assert!(Arc::ptr_eq(backend, kept));
        let value = runtime.block_on(kept.get(&space, "k")).expect("get");
        assert_eq!(value.as_deref(), Some(&b"v"[..]));

        let mut other = Slots::default();
        Kv.start(&granted, None, &mut other).expect("start");
        let backend = &other.get::<KvService>().expect("started").backend;
        let error = runtime
            .block_on(backend.get(&space, "k"))
            .expect_err("a second open of the file");
        assert!(
            error
                .to_string()
                .contains("is open in another warden process"),
            "{error}"
        );
    }
}
