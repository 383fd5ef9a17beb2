/**
 * Named limits of durable storage, with their defaults (documented in docs/storage.md).
 *
 * Sizes are in bytes. Every limit is enforced where data enters: a save that would exceed one is
 * refused with a typed StorageError before anything is written; a file on disk that claims to
 * exceed one is treated as corrupt when it is read.
 */

/** A WAL segment rolls over once its size would pass this (one oversized record may exceed it). */
export const walSegmentBytesMax = 64 * 1024 * 1024

/**
 * Payload bytes of one WAL record. A save's entries are split over several records to stay under
 * it; one entry that alone encodes to more is refused (the Raft layer bounds entries far below).
 * On read, a length field above it marks the record as torn or corrupt.
 */
export const recordBytesMax = 16 * 1024 * 1024

/** Bytes of one snapshot's data (the state machine's encoded state). */
export const snapshotDataBytesMax = 2 * 1024 * 1024 * 1024

/** Snapshot files kept on disk; older ones are pruned after each compaction (etcd --max-snapshots). */
export const snapshotsKeptMax = 5

/**
 * WAL appends of at most this many entries (a hard state alone is none)...
 */
export const walSyncWriteEntriesMax = 1

/**
 * ...and at most this many bytes are written on the event loop's thread rather than through
 * libuv's thread pool, while the disk is fast (sync-writes.ts; 0 turns it off). One entry of a
 * 256-byte value, with the hard state, is about 400 bytes.
 */
export const walSyncWriteBytesMax = 4 * 1024

/** ...while the moving average of WAL write times is at most this (ms). */
export const walSyncWriteFastMs = 2

/** A write in place that takes longer than this (ms)... */
export const walSyncWriteStallMs = 20

/** ...sends every WAL write through the thread pool for this long (ms). */
export const walSyncWriteStallOffMs = 60_000
