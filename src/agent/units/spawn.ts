/**
 * Starting one command of a unit as a child process: in its own process group (`detached`), so
 * the runner can signal the command and everything it forked at once; through
 * `setpriv --pdeathsig SIGKILL --` when setpriv exists, so the command dies with the agent even
 * when the agent is killed with -9; stdout and stderr cut into lines for the journal.
 *
 * Invariants:
 * - `exited` always resolves (never rejects), once, after the process ended and its output was
 *   read to the end: a spawn failure (no such file, permission) resolves with `error` set.
 * - The returned pid is the process group id (setpriv execs the command in place: same pid).
 * - When the command's process exits, whatever it left in its process group is SIGKILLed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { LineSplitter } from './journal.ts'
import { killGroup } from './pid-file.ts'

export const setprivPath = '/usr/bin/setpriv'

export interface CommandSpec {
  argv: readonly string[]
  env: ReadonlyMap<string, string>
  cwd: string
  uid?: number | undefined
  gid?: number | undefined
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** The spawn itself failed (the process never ran). */
  error?: string
}

export interface Spawned {
  /** Undefined when the spawn failed at once (exited says why). */
  pid: number | undefined
  exited: Promise<Exit>
}

export interface SpawnOptions {
  /** setpriv's path, or undefined to spawn without a parent-death signal. */
  setpriv: string | undefined
  lineBytesMax: number
  onLine: (stream: 'stdout' | 'stderr', text: string) => void
}

/** setprivPath when it exists on this machine. */
export function findSetpriv(): string | undefined {
  return existsSync(setprivPath) ? setprivPath : undefined
}

export function spawnCommand(spec: CommandSpec, options: SpawnOptions): Spawned {
  const [exe, ...args] = spec.argv
  if (exe === undefined || exe === '') return { pid: undefined, exited: Promise.resolve(noCommand()) }
  const argv =
    options.setpriv === undefined
      ? [exe, ...args]
      : [options.setpriv, '--pdeathsig', 'SIGKILL', '--', exe, ...args]
  let child: ChildProcess
  try {
    child = spawn(argv[0] as string, argv.slice(1), {
      cwd: spec.cwd,
      env: Object.fromEntries(spec.env),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
      ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
    })
  } catch (error) {
    return { pid: undefined, exited: Promise.resolve({ code: null, signal: null, error: message(error) }) }
  }
  const splitters = {
    stdout: new LineSplitter(options.lineBytesMax, (text) => options.onLine('stdout', text)),
    stderr: new LineSplitter(options.lineBytesMax, (text) => options.onLine('stderr', text)),
  }
  child.stdout?.on('data', (chunk: Buffer) => splitters.stdout.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => splitters.stderr.push(chunk))
  const exited = new Promise<Exit>((resolve) => {
    let spawnError: string | undefined
    child.once('error', (error) => {
      spawnError = message(error)
      if (child.pid === undefined) resolve({ code: null, signal: null, error: spawnError })
    })
    // What the command left in its group dies with it (systemd kills a service's cgroup when it
    // ends); this also lets 'close' come when a backgrounded grandchild holds the pipes open.
    child.once('exit', () => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL')
    })
    // 'close': the process ended and both pipes are read to the end (or the spawn failed).
    child.once('close', (code, signal) => {
      splitters.stdout.end()
      splitters.stderr.end()
      resolve(
        spawnError !== undefined && code === null && signal === null
          ? { code, signal, error: spawnError }
          : { code, signal },
      )
    })
  })
  return { pid: child.pid, exited }
}

function noCommand(): Exit {
  return { code: null, signal: null, error: 'no command' }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
