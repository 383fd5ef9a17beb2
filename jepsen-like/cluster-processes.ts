/**
 * Member processes: spawning `bin/cairn` with its output appended to a log file, signalling, and
 * the guarantee that none outlives the harness.
 *
 * Invariant: every child spawned here is in `live` until its 'exit' event; on the harness's own
 * exit (normal, error, or a signal handled by the CLI) every live child gets SIGKILL, which also
 * ends a SIGSTOPped one, and every directory registered with removeOnExit is deleted.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, closeSync, openSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const cairnBin = fileURLToPath(new URL('../bin/cairn', import.meta.url))

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface MemberProcess {
  child: ChildProcess
  pid: number
  exited: Promise<Exit>
  /** Set before the harness kills it on purpose; an exit without it is a crash. */
  expectExit: boolean
}

const live = new Set<ChildProcess>()
const dirsToRemove = new Set<string>()
let exitHookInstalled = false

/**
 * SIGKILLs every member process still running and deletes the registered directories
 * (synchronous: safe in an 'exit' handler).
 */
export function killLiveProcesses(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL')
    } catch {}
  }
  for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true })
  dirsToRemove.clear()
}

/** Deletes `dir` when the harness exits, unless forgotten first (the cluster removes it itself). */
export function removeOnExit(dir: string): void {
  installExitHook()
  dirsToRemove.add(dir)
}

export function forgetOnExit(dir: string): void {
  dirsToRemove.delete(dir)
}

function installExitHook(): void {
  if (exitHookInstalled) return
  process.on('exit', killLiveProcesses)
  exitHookInstalled = true
}

export function liveProcessCount(): number {
  return live.size
}

export function spawnMember(args: string[], logPath: string, banner: string): MemberProcess {
  installExitHook()
  appendFileSync(logPath, `--- harness ${new Date().toISOString()}: ${banner}\n`)
  const fd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(process.execPath, [cairnBin, ...args], { stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
  live.add(child)
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
    child.once('error', () => {
      live.delete(child)
      resolve({ code: null, signal: null })
    })
  })
  return { child, pid: child.pid ?? -1, exited, expectExit: false }
}

/** Sends a signal; false when the process is already gone. */
export function signal(proc: MemberProcess, sig: NodeJS.Signals): boolean {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return false
  try {
    return proc.child.kill(sig)
  } catch {
    return false
  }
}
