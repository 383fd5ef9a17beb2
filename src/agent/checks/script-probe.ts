/**
 * The script check: run Args (no shell) as a child process. Exit 0 is passing, 1 is warning, any
 * other exit, a signal, a failure to start or a run past Timeout is critical. The output is
 * stdout and stderr as they arrive, capped at OutputMaxSize (the start is kept; the rest is read
 * and dropped so the child never blocks on a full pipe).
 *
 * The child leads its own process group (detached), so a timeout or a stop kills the group with
 * SIGKILL: the script and anything it started in its group. The probe settles only after the
 * child has exited and been reaped, so when it has settled, the pid is gone. If something the
 * script left behind holds its stdout or stderr open, the result is taken scriptPipeDrainMs after
 * the exit and the pipes are closed on our side.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { formatDurationMs } from '../../catalog/durations.ts'
import type { ScriptCheckSpec } from './definition.ts'
import { scriptPipeDrainMs } from './limits.ts'
import { capText, OutputBuffer } from './output.ts'
import { errorText, type ProbeHandle, type ProbeResult, withDeadline } from './probe.ts'

export function createScriptProbe(spec: ScriptCheckSpec, outputBytesMax: number): ProbeHandle {
  const probe = (signal: AbortSignal): Promise<ProbeResult> =>
    withDeadline(signal, spec.timeoutMs, (deadline, timedOut) =>
      runOnce(spec, outputBytesMax, deadline).then((ended) => {
        if (ended.kind === 'error') {
          return {
            status: 'critical',
            output: capText(`failed to run ${spec.args[0]}: ${ended.why}`, outputBytesMax),
          }
        }
        if (ended.kind === 'killed') {
          const why = timedOut()
            ? `Timed out (${formatDurationMs(spec.timeoutMs)}) running check`
            : 'Check stopped'
          return { status: 'critical', output: capText(`${why}\n${ended.output}`, outputBytesMax) }
        }
        const status = ended.code === 0 ? 'passing' : ended.code === 1 ? 'warning' : 'critical'
        const output = ended.code === null ? `${ended.output}\nkilled by ${ended.signal}` : ended.output
        return { status, output: capText(output, outputBytesMax) }
      }),
    )
  return { probe, close: async () => {} }
}

type Ended =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; output: string }
  | { kind: 'killed'; output: string }
  | { kind: 'error'; why: string }

/** Runs the script once; resolves after the child has exited (never rejects). */
function runOnce(spec: ScriptCheckSpec, outputBytesMax: number, signal: AbortSignal): Promise<Ended> {
  return new Promise((resolve) => {
    const output = new OutputBuffer(outputBytesMax)
    let child: ChildProcess
    try {
      child = spawn(spec.args[0]!, spec.args.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (error) {
      return resolve({ kind: 'error', why: errorText(error) })
    }
    let killed = false
    let drainTimer: NodeJS.Timeout | undefined
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    const killGroup = () => {
      killed = true
      killProcessGroup(child)
    }
    if (signal.aborted) killGroup()
    else signal.addEventListener('abort', killGroup, { once: true })
    child.stdout?.on('data', (chunk: Buffer) => output.write(chunk))
    child.stderr?.on('data', (chunk: Buffer) => output.write(chunk))
    const finish = (ended: Ended) => {
      signal.removeEventListener('abort', killGroup)
      clearTimeout(drainTimer)
      child.stdout?.destroy()
      child.stderr?.destroy()
      resolve(ended)
    }
    const finishExited = () => {
      if (exit === undefined) return
      if (killed) finish({ kind: 'killed', output: output.text() })
      else finish({ kind: 'exited', ...exit, output: output.text() })
    }
    child.once('error', (error) => {
      // A spawn failure (ENOENT, EACCES): no process ran, so there is nothing to wait for.
      if (child.pid === undefined) finish({ kind: 'error', why: errorText(error) })
    })
    child.once('exit', (code, exitSignal) => {
      exit = { code, signal: exitSignal }
      drainTimer = setTimeout(finishExited, scriptPipeDrainMs)
    })
    child.once('close', finishExited)
  })
}

function killProcessGroup(child: ChildProcess): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // ESRCH: the group is already gone.
  }
}
