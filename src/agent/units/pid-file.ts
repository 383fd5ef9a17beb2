/**
 * `<dataDir>/units/pids.json`: the process groups this agent's runner has started and not yet seen
 * end, so that an agent that comes back after a crash (kill -9, OOM, power cut of the agent
 * alone) kills whatever of its previous run survived before it starts anything: a machine whose
 * units were moved elsewhere must never run them twice. Belt and braces: units are also spawned
 * with a parent-death signal (setpriv --pdeathsig), which covers the common case by itself.
 *
 * Invariants:
 * - The file is replaced atomically (written beside, fsynced, renamed, its directory fsynced, and
 *   a directory created for it fsynced into its parent): a crash leaves the old or the new list,
 *   never half of one. Writes are serialized, each writes the list as it is then.
 * - An entry is added before its process can run a unit's code for long (right after spawn) and
 *   removed after the whole group was killed or the process ended.
 * - A group is killed at start only if its leader still has the start time recorded (from
 *   /proc/<pid>/stat), so a pid reused by an unrelated process after a reboot is left alone.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ensureDirectory, writeFileAtomic } from '../../raft/storage/directory.ts'

export interface PidEntry {
  unit: string
  /** The process id, also the process group id (spawned detached). */
  pid: number
  /** /proc/<pid>/stat field 22 (clock ticks since boot), when known. */
  startTicks?: number
}

export class PidFile {
  readonly path: string
  readonly #bytesMax: number
  readonly #entries = new Map<number, PidEntry>()
  #chain: Promise<void> = Promise.resolve()

  constructor(path: string, bytesMax: number) {
    this.path = path
    this.#bytesMax = bytesMax
  }

  get size(): number {
    return this.#entries.size
  }

  /** Reads the file of a previous run; [] when missing or unreadable. */
  async readPrevious(): Promise<PidEntry[]> {
    const text = await readFile(this.path, 'utf8').catch(() => '')
    if (text === '' || Buffer.byteLength(text) > this.#bytesMax) return []
    try {
      const parsed = JSON.parse(text) as { runs?: unknown }
      if (!Array.isArray(parsed.runs)) return []
      return parsed.runs.flatMap((r: unknown): PidEntry[] => {
        const { unit, pid, startTicks } = (r ?? {}) as Record<string, unknown>
        if (typeof unit !== 'string' || !Number.isInteger(pid) || (pid as number) <= 1) return []
        const entry: PidEntry = { unit, pid: pid as number }
        if (typeof startTicks === 'number') entry.startTicks = startTicks
        return [entry]
      })
    } catch {
      return []
    }
  }

  add(unit: string, pid: number): Promise<void> {
    const entry: PidEntry = { unit, pid }
    const ticks = processStartTicks(pid)
    if (ticks !== undefined) entry.startTicks = ticks
    this.#entries.set(pid, entry)
    return this.#write()
  }

  remove(pid: number): Promise<void> {
    if (!this.#entries.delete(pid)) return this.#chain
    return this.#write()
  }

  /** Writes the current list (also used at start to replace the previous run's list). */
  #write(): Promise<void> {
    const run = this.#chain.then(async () => {
      const text = JSON.stringify({ version: 1, runs: [...this.#entries.values()] })
      await ensureDirectory(dirname(this.path)) // a new directory is made durable too
      await writeFileAtomic(this.path, text)
    })
    this.#chain = run.catch(() => {})
    return run
  }

  /** Resolves once every write asked for so far has finished (failed ones included). */
  flushed(): Promise<void> {
    return this.#chain
  }

  clear(): Promise<void> {
    this.#entries.clear()
    return this.#write()
  }
}

/** /proc/<pid>/stat starttime, or undefined (no /proc, no such process). */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    return Number.isFinite(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

/** Kills a previous run's group if its leader is the same process; true if a signal was sent. */
export function killLeftover(entry: PidEntry): boolean {
  if (entry.startTicks !== undefined) {
    const now = processStartTicks(entry.pid)
    // The leader is gone (now undefined): its group may still hold children, kill it anyway;
    // a different start time means the pid was reused: leave it alone.
    if (now !== undefined && now !== entry.startTicks) return false
  }
  return killGroup(entry.pid, 'SIGKILL')
}

/** Signals a whole process group; false when it no longer exists. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`killGroup: bad process group ${pgid}`)
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}
