/**
 * The unit runner's named limits and timings, each documented in docs/unit-runner.md. Every
 * queue, buffer, file and count the runner keeps is bounded by one of these; past a limit the
 * runner refuses (a unit past unitsMax gets loadState 'error'), cuts (a line past lineBytesMax) or
 * drops and counts (journal bytes past pendingBytesMax), never grows without bound.
 */
export const runnerLimits = {
  /** Units this machine holds (assigned, loaded or launched); more are reported as errors, not run. */
  unitsMax: 256,
  /** One journal file; past it the file is rotated. */
  journalFileBytesMax: 1024 * 1024,
  /** Rotated journal files kept per unit (journal.1 .. journal.N), besides the current one. */
  journalFilesKept: 3,
  /** One journal line's text, in UTF-8 bytes; longer output is cut into lines of this size. */
  journalLineBytesMax: 8 * 1024,
  /** Journal bytes waiting for the disk per unit; past it lines are dropped and counted. */
  journalPendingBytesMax: 1024 * 1024,
  /** Lines one tail() returns at most. */
  journalTailLinesMax: 10_000,
  /** Followers of one unit's journal at a time; follow() answers false past it. */
  journalFollowersMax: 64,
  /** Bytes read per step when a tail reads a journal file backwards. */
  journalReadChunkBytes: 64 * 1024,
  /** The longest restart delay: RestartSec doubles on each restart up to this. */
  restartDelayMsMax: 60_000,
  /** A unit that ran this long without exiting has its restart delay reset to RestartSec. */
  restartResetAfterMs: 30_000,
  /** How long an ExecStartPre command may run before it is killed and the start fails. */
  startPreTimeoutMs: 90_000,
  /** Unit state writes are coalesced over this window (each write is a raft entry). */
  stateWriteDelayMs: 50,
  /** State records written in one store transaction. */
  stateWritesPerTxnMax: 64,
  /** First retry of a failed state write; doubles up to stateRetryMsMax. */
  stateRetryMsMin: 200,
  stateRetryMsMax: 5_000,
  /**
   * How often a running unit's declared check status is read from the local registry, besides at
   * once whenever the registry reports the check changed (the poll is the fallback).
   */
  healthPollMs: 1_000,
  /**
   * When a unit's declared check first runs after the unit's process started (instead of Consul's
   * random stagger within the Interval): soon, so that a rolling update learns the new instance is
   * healthy without waiting up to one Interval; a process not listening yet fails it once and the
   * check runs again one Interval later.
   */
  checkFirstRunMs: 250,
  /** stop(): the longest a graceful stop of every unit may take before the rest are SIGKILLed. */
  stopAllMsMax: 30_000,
  /** An EnvironmentFile=, in bytes (read whole: it is small by nature). */
  environmentFileBytesMax: 1024 * 1024,
  /** pids.json, in bytes (a few hundred runs at most). */
  pidFileBytesMax: 1024 * 1024,
  /** The message of a unit state, in characters. */
  messageCharsMax: 1_024,
} as const

export type RunnerLimits = { -readonly [K in keyof typeof runnerLimits]: number }
