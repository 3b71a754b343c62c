//! The id of each call.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh id for one call: 32 lowercase hex digits, unique across restarts and replicas. The
/// agent sees it in error messages; the audit record carries it.
///
/// The first 16 digits are random, drawn once per process; the last 16 count calls from a
/// random start. So ids are unique without a system call per call.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static STATE: OnceLock<(u64, AtomicU64)> = OnceLock::new();
    let (process, counter) = STATE.get_or_init(|| {
        let (process, start) = uuid::Uuid::new_v4().as_u64_pair();
        (process, AtomicU64::new(start))
    });
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(32);
    for word in [*process, n] {
        for shift in (0..16).rev() {
            id.push(char::from(HEX[((word >> (shift * 4)) & 15) as usize]));
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_hex() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
