/**
 * One agent per data directory: a lock file `<data-dir>/LOCK` holding the owner's pid and its
 * process start time.
 *
 * Two members writing one WAL would interleave records and lose acknowledged writes, so a second
 * agent on a directory that is in use refuses to start (DATA_DIR_LOCKED) and changes nothing.
 *
 * Invariants:
 *   - The lock is taken with an exclusive create (O_EXCL): of two agents starting at once, one wins.
 *   - A lock whose owner is gone (kill -9, a crash, a reboot) is stale and taken over: the owner is
 *     alive only if a process with its pid exists AND (where /proc tells it) started at the recorded
 *     time, so a recycled pid does not keep a dead owner's lock forever.
 *   - release() removes the file only if it still holds this process's own record.
 *
 * Node has no flock(2); this is the portable substitute. It protects against operators and scripts
 * starting two agents on one directory, not against hostile processes.
 */
import { readFileSync } from 'node:fs'
import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import path from 'node:path'
import { CairnError } from '../errors.ts'

export const lockFileName = 'LOCK'

interface LockRecord {
  pid: number
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot), or null where /proc is missing. */
  startTime: string | null
}

export interface DataDirLock {
  release(): Promise<void>
}

export async function acquireDataDirLock(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, lockFileName)
  const own: LockRecord = { pid: process.pid, startTime: processStartTime(process.pid) }
  const text = `${JSON.stringify(own)}\n`
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx')
      try {
        await handle.writeFile(text)
        await handle.sync()
      } finally {
        await handle.close()
      }
      return { release: () => releaseLock(file, text) }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = await readLock(file)
    if (holder !== undefined && isAlive(holder)) {
      throw new CairnError(
        'DATA_DIR_LOCKED',
        `${dataDir} is in use by the agent with pid ${holder.pid} (lock file ${file})`,
      )
    }
    await unlink(file).catch(() => {})
  }
  throw new CairnError('DATA_DIR_LOCKED', `${dataDir}: another agent is taking the lock at this moment`)
}

async function releaseLock(file: string, text: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => undefined)
  if (current === text) await unlink(file).catch(() => {})
}

async function readLock(file: string): Promise<LockRecord | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return undefined // removed in between: free
  }
  try {
    const record = JSON.parse(text) as Partial<LockRecord>
    if (!Number.isSafeInteger(record.pid) || (record.pid as number) <= 0) return undefined
    const startTime = typeof record.startTime === 'string' ? record.startTime : null
    return { pid: record.pid as number, startTime }
  } catch {
    // A torn lock file (a crash while it was written): its writer never finished starting.
    return undefined
  }
}

function isAlive(holder: LockRecord): boolean {
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    // EPERM: it exists but belongs to someone else, so it is alive.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (holder.startTime === null) return true
  const now = processStartTime(holder.pid)
  return now === null || now === holder.startTime
}

/** The process's start time from /proc/<pid>/stat, or null where /proc is not available. */
function processStartTime(pid: number): string | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // afterName[0] is field 3 (state); field 22 is afterName[19].
  return afterName[19] ?? null
}

/**
 * Creates `dataDir` if missing, takes its lock, and runs `start` with it. If `start` fails, the lock
 * is released before the error is rethrown; once it succeeds, releasing is the started agent's job.
 */
export async function startWithDataDirLock<T>(
  dataDir: string,
  start: (lock: DataDirLock) => Promise<T>,
): Promise<T> {
  await mkdir(dataDir, { recursive: true })
  const lock = await acquireDataDirLock(dataDir)
  try {
    return await start(lock)
  } catch (error) {
    await lock.release()
    throw error
  }
}
