/**
 * Typed operating errors of durable storage.
 *
 * Programmer errors (a save before load, entries that are not contiguous, calls that overlap) are
 * assertions: plain Errors that stop the process. Everything here is an operating error the
 * driver handles, and each code is stable:
 *
 *   STORAGE_CORRUPT      load() found damage that is not a torn tail: a bad record before the
 *                        end of the log, a missing segment, a snapshot that fails its checksum.
 *                        The member must not start (it could start with holes); restore it from
 *                        a peer or a backup.
 *   STORAGE_IO           the operating system failed a read, write, fsync or rename (EIO,
 *                        ENOSPC, EACCES...). `cause` holds the system error.
 *   STORAGE_FAILED       an earlier write or sync failed, so what is on disk is unknown: every
 *                        later call is refused until the process restarts and load() recovers
 *                        (a failed fsync cannot be retried safely).
 *   STORAGE_LIMIT        a save would exceed a named limit (recordBytesMax for one entry,
 *                        snapshotDataBytesMax). Nothing was written.
 *
 * The codes and messages live in the one catalogue (src/errors.ts, docs/errors.md).
 */
import { CairnError, type ErrorCode } from '../../errors.ts'

export type StorageErrorCode = Extract<ErrorCode, `STORAGE_${string}`>

export class StorageError extends CairnError {
  declare readonly code: StorageErrorCode

  constructor(code: StorageErrorCode, detail: string, options?: { cause?: unknown }) {
    super(code, detail, options)
    this.name = 'StorageError'
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code)
}

/** Programmer errors: stay on in production. */
export function assertStorage(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`storage assertion: ${message}`)
}
