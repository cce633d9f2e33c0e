//! Keeps the server's resident memory flat across large jobs.
//!
//! glibc's allocator keeps freed memory in its arenas for reuse: after a backup or restore of a
//! large portal the process stays at the job's peak until exit, and the next job starts from
//! there. Three settings and one call fix that:
//!
//! - [`tune`] (once, at start, before other threads allocate) limits the arenas to
//!   [`ARENAS`] (glibc gives every allocating thread its own, up to 8 per core, and each keeps
//!   what it freed: resident memory grew by about 40 MB with every backup of a large portal),
//!   and fixes the size above which allocations get their own mapping, returned to the system
//!   when freed (glibc otherwise raises that bound to the largest block freed so far, up to
//!   32 MiB, after which the multi-MiB buffers of packs and chunks live in the arenas).
//! - [`release`] (after each job) returns every free page of every arena to the system
//!   (`malloc_trim(0)`, which since glibc 2.8 releases whole free pages anywhere in a heap, not
//!   only at its top).
//!
//! On other platforms and C libraries both are no-ops.
//!
//! The workspace forbids unsafe code; this crate holds its only two unsafe calls (`mallopt`, `malloc_trim`). Both are
//! calls into the C library with plain integer arguments: neither takes a pointer, both take the
//! allocator's own locks, and both may be called from any thread at any time.

/// How many arenas the allocator may use, unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENAS: usize = 2;

/// Allocations of at least this many bytes are mapped on their own and unmapped when freed.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Limits the arenas to [`ARENAS`] (unless the environment sets `MALLOC_ARENA_MAX`) and sets
/// the mapping threshold to [`MMAP_THRESHOLD`]. Returns whether the C library accepted both
/// (always `false` where they do not apply).
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = std::env::var_os("MALLOC_ARENA_MAX").is_some() || mallopt(libc::M_ARENA_MAX, ARENAS);
        mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) && arenas
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallopt(param: libc::c_int, value: usize) -> bool {
    let Ok(value) = libc::c_int::try_from(value) else {
        return false;
    };
    // SAFETY: mallopt takes two integers and no pointers; an unknown parameter or out-of-range
    // value is refused with 0, and it serialises with the allocator through the arena locks.
    #[allow(unsafe_code)]
    let accepted = unsafe { libc::mallopt(param, value) };
    accepted == 1
}

/// Returns the allocator's free memory to the system. Returns whether any was returned. Takes
/// a few milliseconds on a large heap; call it from a blocking context.
pub fn release() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes one integer (the padding to keep) and no pointers; it locks
        // each arena while it trims it, so concurrent allocations are safe.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident set size in KiB, from /proc (Linux only).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status")
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn release_gives_freed_small_blocks_back() {
        // Many small blocks (below any mapping threshold) live in the arena; freeing all but a
        // few at the end leaves the arena's pages free but still resident, and pins its top so
        // plain top-trimming cannot give them back.
        let mut blocks: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 512]).collect();
        let keep: Vec<Vec<u8>> = blocks.split_off(blocks.len() - 16);
        let before = rss_kib();
        drop(blocks);
        let freed_only = rss_kib();
        release();
        let after = rss_kib();
        // ~100 MiB was allocated; most of it must leave the process after release, whether or
        // not free() already gave some back.
        assert!(before > 80 * 1024, "the blocks were resident: {before} KiB");
        assert!(
            after + 60 * 1024 < before,
            "release gave memory back: {before} KiB with the blocks, {freed_only} KiB after free, {after} KiB after release"
        );
        assert_eq!(keep.len(), 16);
    }

    #[test]
    fn tune_and_release_can_be_called_again() {
        let first = tune();
        assert_eq!(tune(), first);
        release();
        release();
    }
}
