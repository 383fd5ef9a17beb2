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
