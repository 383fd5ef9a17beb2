/**
 * bench/dns-qps/cpu: CPU time of a process (all its threads, user + system) from
 * /proc/<pid>/stat, so that a cell can say how busy the server was: a server near 100 % of one core
 * is the limit of its row; one well below it was waiting for the load generator (or for a core the
 * rest of the machine was using). Linux only; elsewhere the figure is left out.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Clock ticks per second (USER_HZ), almost always 100. */
const ticksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100

/** Seconds of CPU the process has used so far, or undefined if /proc cannot tell. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Fields after the command name (which may hold spaces), counted from field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
  return (utime + stime) / ticksPerSecond
}
