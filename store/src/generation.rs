//! A change counter shared by every process that has the store open: a small file beside the store, mapped
//! into memory, incremented after each committed change to a connection.
//!
//! It lets a process that caches opened tokens tell "nothing changed" with one atomic load instead of a read
//! transaction (tens of nanoseconds instead of microseconds). The counter is bumped *after* the commit, so a
//! reader that loads it before reading the store never pairs an old state with a new count. A writer killed
//! between its commit and the bump leaves the count behind; readers therefore also revalidate against the
//! store itself at least every [`crate::GENERATION_MAX_AGE`] (the broker's rule), which bounds how long such a
//! change can go unseen.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapRaw;

const LEN: u64 = 64;

pub(crate) struct Generation {
    map: MmapRaw,
}

impl Generation {
    /// The counter file of the store at `store`, created (0600) when missing. `None` when it cannot be made or
    /// mapped (a read-only directory): callers then read the store every time, which is slower, never wrong.
    pub(crate) fn open(store: &Path) -> Option<Self> {
        let path = path_for(store);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .ok()?;
        if file.metadata().ok()?.len() < LEN {
            // Extending with zeros keeps any count another process already wrote in the first 8 bytes.
            file.set_len(LEN).ok()?;
        }
        let map = MmapRaw::map_raw(&file).ok()?;
        if map.len() < 8 || map.as_ptr() as usize % 8 != 0 {
            return None;
        }
        Some(Self { map })
    }

    fn counter(&self) -> &AtomicU64 {
        // SAFETY: the mapping is at least 8 bytes, page-aligned (so 8-aligned), shared with other processes and
        // only ever accessed through this atomic, and it lives as long as `self`.
        unsafe { &*(self.map.as_mut_ptr() as *const AtomicU64) }
    }

    pub(crate) fn load(&self) -> u64 {
        self.counter().load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.counter().fetch_add(1, Ordering::AcqRel);
    }
}

pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".gen");
    PathBuf::from(name)
}
