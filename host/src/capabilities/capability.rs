//! The [`Capability`] trait: what one kind of grant is to the rest of warden.
//!
//! Every capability is a unit struct in its own module, listed once in [`super::described`]. The
//! runtime links each one's host functions and asks each to prepare its share of every call;
//! `warden check`, `warden inspect` and the catalog's annotations ask each what it grants,
//! what it warns about and what it lets a tool do. Nothing outside the module knows its
//! types: its per-plugin state ([`Capability::open`]) and per-call state
//! ([`Capability::prepare`]) travel in type-keyed [`Slots`].

use std::any::{Any, TypeId};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::CapabilityError;
use crate::manifest::{Manifest, Plugin};

/// A component's import names, as [`crate::schema`] describes them (`wasi:http/types@0.2.6`).
#[derive(Clone, Copy, Debug)]
pub struct Imports<'a>(pub &'a [String]);

impl Imports<'_> {
    /// Whether any import starts with one of `prefixes` (`"wasi:http/"`).
    pub fn any(&self, prefixes: &[&str]) -> bool {
        self.0
            .iter()
            .any(|import| prefixes.iter().any(|p| import.starts_with(p)))
    }
}

/// What a plugin's grant of a capability lets its tools do, for their annotations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// It can change something outside the call (a write, a request): not `readOnlyHint`.
    pub writes: bool,
    /// It reaches the open world (the network): `openWorldHint`.
    pub open_world: bool,
}

impl std::ops::BitOr for Effects {
    type Output = Effects;
    fn bitor(self, other: Effects) -> Effects {
        Effects {
            writes: self.writes || other.writes,
            open_world: self.open_world || other.open_world,
        }
    }
}

/// A `warden check` warning about a plugin: a code from
/// [`WARNING_CODES`](crate::manifest::WARNING_CODES) (what `acknowledge` lists) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantWarning {
    /// `unused-grant:KEY` or `ungranted-import:WHAT`.
    pub code: &'static str,
    /// What is wrong and what follows from it.
    pub message: String,
}

impl GrantWarning {
    /// A warning with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> GrantWarning {
        GrantWarning {
            code,
            message: message.into(),
        }
    }
}

/// One kind of grant. Implementations are unit structs listed in [`super::described`]; see
/// ARCHITECTURE.md for the recipe.
pub trait Capability: Sync {
    /// Its name: the manifest key it reads (`"dirs"`, `"kv"`), and what `check` prints.
    fn name(&self) -> &'static str;

    /// What `warden inspect` says a component importing it can be granted, one line per
    /// kind of grant (`"kv: a private key-value store"`); empty when `imports` do not reach
    /// it.
    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str>;

    /// What `plugin` is granted, one line each, for `warden check` (`grant env   LANG`);
    /// empty when nothing.
    fn summary(&self, plugin: &Plugin) -> Vec<String>;

    /// The same as data, for `warden check --json`: entries of the plugin's `grants` object.
    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, serde_json::Value)>;

    /// Grants `plugin`'s component cannot reach through `imports`, and imports no grant serves.
    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning>;

    /// What the grant lets a tool of a component importing `imports` do.
    fn effects(&self, plugin: &Plugin, imports: Imports<'_>) -> Effects;

    /// Once per manifest, before any plugin is opened: host-wide state (a database handle
    /// opened from a manifest section), put in `services`. A reload passes the services of the
    /// manifest in force as `previous`, to keep what its settings did not change.
    fn start(
        &self,
        _manifest: &Manifest,
        _previous: Option<&Slots>,
        _services: &mut Slots,
    ) -> Result<(), CapabilityError> {
        Ok(())
    }

    /// Once per plugin, when it is opened: state its calls share (a connection, a store
    /// handle), put in `opened`. An error ends the plugin's load.
    fn open(
        &self,
        _plugin: &Plugin,
        _services: &Slots,
        _opened: &mut Slots,
    ) -> Result<(), CapabilityError> {
        Ok(())
    }

    /// When the server stops (after its last call, before the process ends): make durable
    /// what its services hold that is not yet. Builds still compiling may hold the services,
    /// so this cannot wait for them to be dropped.
    fn stop(&self, _services: &Slots) {}

    /// Once per call: its share of the call's context.
    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError>;

    /// What the call did with it, for the audit record (`{"ops": 3}`); `None` when nothing.
    fn usage(&self, _call: &Slots) -> Option<serde_json::Value> {
        None
    }
}

/// A capability's host functions, linked into the linker of store data `T`.
pub trait Link<T>: Capability {
    /// Add its host functions (or its guards over WASI's) to `linker`. Nothing, for a
    /// capability served by WASI alone.
    fn link(&self, _linker: &mut Linker<T>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// What the store data of a call gives capabilities' host functions.
pub trait CallView: Send + 'static {
    /// The call's WASI context, resource table and capability states.
    fn parts(&mut self) -> CallParts<'_>;
}

/// The parts of a call's store data that capabilities' host functions work on.
pub struct CallParts<'a> {
    /// The call's WASI context.
    pub wasi: &'a mut WasiCtx,
    /// Its resource table.
    pub table: &'a mut ResourceTable,
    /// Each capability's state for the call ([`CallBuilder::slots`]).
    pub slots: &'a mut Slots,
}

/// What [`Capability::prepare`] builds a call's context with.
pub struct CallBuilder<'a> {
    /// The plugin's manifest entry.
    pub plugin: &'a Plugin,
    /// Its name, shared.
    pub name: &'a std::sync::Arc<str>,
    /// What the plugin's capabilities opened once ([`Capability::open`]).
    pub opened: &'a Slots,
    /// Its WASI context as it is built.
    pub wasi: &'a mut WasiCtxBuilder,
    /// The call's own states.
    pub slots: &'a mut Slots,
}

/// States keyed by their type, one of each: how a capability keeps its own state in a
/// plugin or a call without anything else naming its type. A handful of entries, found by a
/// scan.
#[derive(Default)]
pub struct Slots(Vec<(TypeId, Box<dyn Any + Send + Sync>)>);

impl Slots {
    /// Put `value` in, replacing the one of its type.
    pub fn insert<V: Any + Send + Sync>(&mut self, value: V) {
        let id = TypeId::of::<V>();
        self.0.retain(|(t, _)| *t != id);
        self.0.push((id, Box::new(value)));
    }

    /// The value of type `V`, if there is one.
    pub fn get<V: Any>(&self) -> Option<&V> {
        let id = TypeId::of::<V>();
        self.0
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref())
    }

    /// The value of type `V`, mutably, made by `make` first if there is none.
    pub fn get_or_insert_with<V: Any + Send + Sync>(&mut self, make: impl FnOnce() -> V) -> &mut V {
        let id = TypeId::of::<V>();
        let index = match self.0.iter().position(|(t, _)| *t == id) {
            Some(index) => index,
            None => {
                self.0.push((id, Box::new(make())));
                self.0.len() - 1
            }
        };
        match self.0[index].1.downcast_mut() {
            Some(value) => value,
            None => unreachable!("the entry of a type holds that type"),
        }
    }

    /// The value of type `V`, mutably, if there is one.
    pub fn get_mut<V: Any>(&mut self) -> Option<&mut V> {
        let id = TypeId::of::<V>();
        self.0
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_mut())
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({} entries)", self.0.len())
    }
}
