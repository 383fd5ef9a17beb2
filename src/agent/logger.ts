/**
 * The agent's structured log: pino, one JSON object per line on stdout, ISO timestamps, every line
 * tagged with the member name. Components (raft, transport, http) log through children of it with
 * a `component` field, so `jq 'select(.component=="raft")'` picks one layer out.
 */
import pino, { type Logger } from 'pino'
import type { LogLevel } from './agent-config.ts'

export type AgentLogger = Logger

export function createAgentLogger(level: LogLevel, member: string): AgentLogger {
  return pino({
    level,
    base: { pid: process.pid, member },
    timestamp: pino.stdTimeFunctions.isoTime,
  })
}
