//! Resource subscriptions: what a plugin says changed (`resource-updated`), checked and passed
//! on to the sessions that subscribed; and `resources/subscribe`, `resources/unsubscribe`
//! and the resource URIs of `subscriptions/listen`, authorized and audited.
//!
//! A plugin may only speak of a URI it serves (listed, or matching one of its templates):
//! anything else is ignored with a log line, so no plugin can make a client re-read another
//! plugin's resource. A principal may only subscribe to a URI it may read: a URI of a plugin
//! it may not use is the same -32602 as an unknown one, as for reads. The updates reach the
//! transports through [`ResourceUpdates`], one channel kept across reloads; a transport
//! checks again, at each update, that the subscriber may still read the URI.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::broadcast;

use super::resources::unknown;
use super::stop::{Asked, MAX_RECORDED_URI, Stop};
use super::{Access, Gate, GateError, Principal, authorize};
use crate::audit::{Outcome, bounded};

/// The most resource subscriptions one session (or one `subscriptions/listen`) may hold.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// The most `subscriptions/listen` streams one principal may hold open at once, over every
/// connection and session: each holds a task, a receiver of every update and up to
/// [`MAX_SUBSCRIPTIONS`] URIs.
pub const MAX_LISTENS_PER_PRINCIPAL: usize = 10;

/// The most URIs one call may say changed; the rest are ignored.
pub(super) const MAX_NOTICES: usize = 100;

/// How many updates wait for a slow subscriber before the oldest are dropped for it.
const BACKLOG: usize = 1024;

/// A resource a plugin said changed, checked: the plugin serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceUpdate {
    /// The URI, as the plugin serves it.
    pub uri: Arc<str>,
}

/// Where checked updates go: every subscribing session listens here. Kept across reloads by
/// passing the same one in [`super::GateOptions`].
pub struct ResourceUpdates {
    sender: broadcast::Sender<ResourceUpdate>,
    /// The `subscriptions/listen` streams open, per principal name.
    listens: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Default for ResourceUpdates {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(BACKLOG),
            listens: Arc::default(),
        }
    }
}

/// One open `subscriptions/listen` stream of a principal, counted until it is dropped.
#[must_use = "the stream is counted only while its slot is held"]
pub struct ListenSlot {
    listens: Arc<Mutex<HashMap<Arc<str>, usize>>>,
    principal: Arc<str>,
}

impl Drop for ListenSlot {
    fn drop(&mut self) {
        let mut listens = self.listens.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = listens.get_mut(&self.principal) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                listens.remove(&self.principal);
            }
        }
    }
}

impl ResourceUpdates {
    /// A receiver of every update published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ResourceUpdate> {
        self.sender.subscribe()
    }

    /// A slot for one more listen stream of `principal`, or `None` when it holds
    /// [`MAX_LISTENS_PER_PRINCIPAL`] already.
    fn open_listen(&self, principal: &Arc<str>) -> Option<ListenSlot> {
        let mut listens = self.listens.lock().unwrap_or_else(PoisonError::into_inner);
        let open = listens.entry(principal.clone()).or_default();
        if *open >= MAX_LISTENS_PER_PRINCIPAL {
            return None;
        }
        *open += 1;
        Some(ListenSlot {
            listens: self.listens.clone(),
            principal: principal.clone(),
        })
    }

    fn publish(&self, uri: &str) {
        // No receiver: nobody subscribed, nothing to tell.
        let _ = self.sender.send(ResourceUpdate { uri: uri.into() });
    }
}

/// What a subscription request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionMethod {
    /// `resources/subscribe` (2025-11-25 sessions).
    Subscribe,
    /// `resources/unsubscribe`.
    Unsubscribe,
    /// A URI of a `subscriptions/listen` (2026-07-28).
    Listen,
}

impl SubscriptionMethod {
    fn name(self) -> &'static str {
        match self {
            Self::Subscribe => "resources/subscribe",
            Self::Unsubscribe => "resources/unsubscribe",
            Self::Listen => "subscriptions/listen",
        }
    }
}

/// A subscription request as the transport hands it over.
pub struct SubscribeRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The MCP request id (JSON-RPC `id`).
    pub mcp_id: Option<Value>,
    /// The URI.
    pub uri: &'a str,
    /// What is asked.
    pub method: SubscriptionMethod,
    /// How many subscriptions the session (or the listen request) holds already.
    pub held: usize,
}

impl Gate {
    /// The channel of checked resource updates.
    pub fn resource_updates(&self) -> broadcast::Receiver<ResourceUpdate> {
        self.updates.subscribe()
    }

    /// Open one `subscriptions/listen` stream for `principal`: held until the slot is
    /// dropped. Over [`MAX_LISTENS_PER_PRINCIPAL`] streams at once, refused (`rate-limited`
    /// in the audit log, invalid params to the client) and recorded.
    pub fn open_listen(
        &self,
        principal: &Principal,
        mcp_id: Option<Value>,
    ) -> Result<ListenSlot, GateError> {
        if let Some(slot) = self.updates.open_listen(&principal.name) {
            return Ok(slot);
        }
        let trail = self.method_trail(
            principal,
            mcp_id,
            "subscriptions/listen",
            None,
            SubscriptionMethod::Listen.name(),
        );
        let stop = Stop::invalid_params(
            Outcome::RateLimited,
            format!(
                "too many open subscriptions/listen streams: a principal may hold at most {MAX_LISTENS_PER_PRINCIPAL} at once; cancel one first"
            ),
        );
        Err(stop.record_request(trail, Asked::Resource("subscriptions/listen")))
    }

    /// Whether `principal` may read `uri`: a plugin serves it and the principal holds one of
    /// its roles.
    pub fn may_read_uri(&self, principal: &Principal, uri: &str) -> bool {
        self.catalog
            .resources()
            .plugin_for(uri)
            .is_some_and(|plugin| Access::for_plugin(&plugin.config).allows(principal))
    }

    /// Pass on the URIs the plugin named `plugin` said changed during a call, keeping only
    /// those it serves. Returns how many were passed on.
    pub(super) fn publish_updates(&self, plugin: &str, uris: Vec<String>) -> usize {
        let mut published = 0;
        for uri in uris {
            let serves = self
                .catalog
                .resources()
                .plugin_for(&uri)
                .is_some_and(|owner| owner.config.name == plugin);
            if serves {
                self.updates.publish(&uri);
                published += 1;
            } else {
                tracing::info!(
                    plugin,
                    uri = &*bounded(&uri, MAX_RECORDED_URI),
                    "a plugin said a resource it does not serve changed; ignored"
                );
            }
        }
        published
    }

    /// Authorize and record one subscription request. Subscribing (directly or in a listen
    /// request) needs a URI the principal may read, and room for one more subscription;
    /// unsubscribing always succeeds (from a URI never subscribed to, too).
    pub fn subscribe(&self, mut request: SubscribeRequest<'_>) -> Result<(), GateError> {
        let recorded = self.recorded(request.uri);
        let mut trail = self.method_trail(
            request.principal,
            request.mcp_id.take(),
            &recorded,
            None,
            request.method.name(),
        );
        let span = tracing::info_span!(
            "subscribe",
            method = request.method.name(),
            uri = &*bounded(request.uri, MAX_RECORDED_URI),
            principal = &*request.principal.name,
            request = trail.id()
        );
        let _entered = span.enter();
        let checked = (|| {
            if request.method == SubscriptionMethod::Unsubscribe {
                return Ok(());
            }
            let plugin = self
                .catalog
                .resources()
                .plugin_for(request.uri)
                .ok_or_else(unknown)?;
            if let Some(guard) = self.guard(&plugin.config.name) {
                trail.plugin(&plugin.config.name, &guard.filter);
            }
            authorize(&Access::for_plugin(&plugin.config), request.principal)?;
            if request.held >= MAX_SUBSCRIPTIONS {
                return Err(Stop::invalid_params(
                    Outcome::Invalid,
                    format!(
                        "a session may hold at most {MAX_SUBSCRIPTIONS} resource subscriptions"
                    ),
                ));
            }
            Ok::<_, Stop>(())
        })();
        match checked {
            Ok(()) => trail.finish_ok(()),
            Err(stop) => Err(stop.record_request(trail, Asked::Resource(request.uri))),
        }
    }
}
