//! What warden renders for the platforms it is deployed on, from the manifest alone (no
//! component is opened): today the Kubernetes NetworkPolicy that lets warden's pods reach what
//! the manifest grants and nothing else ([`network_policy`]). `deploy/kubernetes/` holds the
//! rest of a deployment as plain YAML; `warden deploy network-policy` prints this module's
//! output.

pub mod network_policy;

pub use network_policy::{Options, RenderError, Unbounded, render};
