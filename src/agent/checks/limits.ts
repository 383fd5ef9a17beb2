/**
 * The health checks' limits and defaults. Every one is named here with its default and documented
 * in docs/health-checks.md. A definition past a limit is refused with CHECK_INVALID naming the
 * field; a check's output never grows past its OutputMaxSize, whatever the remote side sends.
 */

/** Consul's default Timeout for HTTP, TCP and script checks. */
export const timeoutMsDefault = 10_000
/**
 * The shortest Interval; a shorter one is raised to it with a warning, as Consul does with its
 * MinInterval (1 s). Tests and embedders may lower it through ParseCheckOptions.intervalMsMin.
 */
export const intervalMsMinDefault = 1_000
/**
 * The longest Interval, Timeout or TTL: Node's timers fire at once past 2^31 - 1 ms (about 24.8
 * days), so a longer value is refused rather than turned into a busy loop.
 */
export const timerMsMax = 0x7fffffff
/** DeregisterCriticalServiceAfter below this is raised to it with a warning, as Consul does. */
export const deregisterCriticalAfterMsMin = 60_000
/** Consul's default OutputMaxSize. */
export const outputBytesDefault = 4096
/** The largest OutputMaxSize accepted: a check's output is stored and replicated on every change. */
export const outputBytesMaxLimit = 1 << 20
/** SuccessBeforePassing and FailuresBeforeCritical are at most this many consecutive results. */
export const consecutiveResultsMax = 10_000

/** ID, Name and ServiceID length in UTF-8 bytes. */
export const idBytesMax = 256
/** Notes length in UTF-8 bytes. */
export const notesBytesMax = 4096
/** The HTTP check's URL length. */
export const urlBytesMax = 4096
/** Method: an HTTP token of at most this many characters. */
export const methodBytesMax = 32
/** Distinct header names in Header. */
export const headersMax = 64
/** All header names and values of Header together, in UTF-8 bytes. */
export const headerBytesMax = 16 * 1024
/** The HTTP check's request Body, in UTF-8 bytes. */
export const bodyBytesMax = 64 * 1024
/** Redirects followed by an HTTP check unless DisableRedirects (Go's http.Client stops at 10). */
export const redirectsMax = 10
/** The TCP check's host name length (a DNS name is at most 253 characters). */
export const hostBytesMax = 253
/** Arguments of a script check (the program counts as one). */
export const argsMax = 256
/** All arguments of a script check together, in UTF-8 bytes. */
export const argsBytesMax = 64 * 1024
/**
 * After a script exits, how long its stdout and stderr may stay open (held by a process it left
 * behind) before they are closed and the result is taken with the output read so far.
 */
export const scriptPipeDrainMs = 200
