//! Who else writes the log: a shared page beside it (`{path}.writers`) counting the warden
//! processes that have it open, so a process that is alone appends without taking a lock.
//!
//! Locking each append with `flock` costs two system calls a record; with one process (the
//! usual case) nobody needs them. The page holds two counters, read and written with
//! sequentially consistent atomics by every process that maps it:
//!
//! - `writers`: processes with the log open. A process that joins counts itself, then waits
//!   until no process is in the middle of a lock-free append (`busy`), and from then on every
//!   process sees more than one writer and locks each append.
//! - `busy`: set by a lone process around each lock-free append. It sets `busy`, then reads
//!   `writers`; a joiner adds to `writers`, then reads `busy`. In any order of the four steps,
//!   one of them sees the other (Dekker), so a lone append never overlaps a joiner's first
//!   look at the file.
//!
//! A process that dies without leaving keeps `writers` one too high: the others just keep
//! locking. The count is reset by the next process that opens the log while no process holds
//! it (each holds a shared `flock` on the page's file for as long as it runs).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// How long a joiner waits for a lone append in progress; a process that died in the middle
/// of one leaves `busy` set.
const BUSY_WAIT: Duration = Duration::from_secs(1);

/// This process's membership of the log's writers; leaving is dropping it.
pub(super) struct Presence {
    page: NonNull<[AtomicU32; 2]>,
    /// Held with a shared lock while this process runs.
    file: File,
}

// SAFETY: the page is only accessed through atomics, and the mapping lives as long as `self`.
unsafe impl Send for Presence {}
// SAFETY: as above.
unsafe impl Sync for Presence {}

impl Presence {
    /// Join the writers of the log at `path`. The caller must hold the log's exclusive lock,
    /// which orders joiners.
    pub(super) fn join(path: &Path) -> io::Result<Presence> {
        let page_path = page_path(path);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&page_path)?;
        let size = std::mem::size_of::<[AtomicU32; 2]>() as u64;
        if file.metadata()?.len() < size {
            file.set_len(size)?;
        }
        // SAFETY: a fresh shared mapping of the file's first bytes, which exist (set_len).
        let page = unsafe { map(&file, size as usize)? };
        let presence = Presence { page, file };
        // Nobody holds the page: counts left by processes that died are stale.
        if presence.file.try_lock().is_ok() {
            presence.writers().store(0, SeqCst);
            presence.busy().store(0, SeqCst);
        }
        // Joiners are ordered by the log's lock, so this conversion races with nobody.
        presence.file.lock_shared()?;
        presence.writers().fetch_add(1, SeqCst);
        let started = Instant::now();
        while presence.busy().load(SeqCst) != 0 && started.elapsed() < BUSY_WAIT {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(presence)
    }

    /// Whether the page file at `path`'s place is still the one this process mapped.
    pub(super) fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(page_path(path))) {
            (Ok(mine), Ok(there)) => (mine.dev(), mine.ino()) == (there.dev(), there.ino()),
            _ => false,
        }
    }

    fn writers(&self) -> &AtomicU32 {
        // SAFETY: the mapping is valid and aligned for as long as `self` lives.
        unsafe { &self.page.as_ref()[0] }
    }

    fn busy(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &self.page.as_ref()[1] }
    }

    /// Start an append: true when this process is the only writer and may append without the
    /// log's lock (then [`Presence::end_alone`] must follow the append); false when it must lock.
    pub(super) fn begin_alone(&self) -> bool {
        self.busy().store(1, SeqCst);
        if self.writers().load(SeqCst) == 1 {
            true
        } else {
            self.busy().store(0, SeqCst);
            false
        }
    }

    /// A lone append is over.
    pub(super) fn end_alone(&self) {
        self.busy().store(0, SeqCst);
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.writers().fetch_sub(1, SeqCst);
        // SAFETY: the mapping made in `join`, unmapped once.
        unsafe {
            libc::munmap(
                self.page.as_ptr().cast(),
                std::mem::size_of::<[AtomicU32; 2]>(),
            );
        }
    }
}

/// `{path}.writers`.
fn page_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".writers");
    path.with_file_name(name)
}

/// Maps the first `len` bytes of `file`, shared.
///
/// # Safety
/// `file` must be at least `len` bytes long.
unsafe fn map(file: &File, len: usize) -> io::Result<NonNull<[AtomicU32; 2]>> {
    use std::os::fd::AsRawFd;
    // SAFETY: a new mapping of an open file; the kernel picks the address.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(address.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}
