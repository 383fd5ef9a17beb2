/**
 * What the fleet API needs from the unit runner of its own agent to serve `cairn unit journal`:
 * the journal of a unit that ran on this machine. The agent implements it (src/agent/units) and
 * hands it to the API, which never imports agent/. For a unit on another machine the API proxies
 * to that machine's agent (MachineRecord.Api).
 */

export interface JournalLine {
  /** ms since the epoch, when the runner read the line. */
  ts: number
  /** `cairn`: a line the runner wrote itself (started, exited with 3, restarting in 2 s). */
  stream: 'stdout' | 'stderr' | 'cairn'
  text: string
}

export interface UnitJournals {
  /** The last `lines` lines of the unit's journal on this machine; undefined when it has none. */
  tail(unit: string, lines: number): Promise<JournalLine[] | undefined>
  /**
   * Calls onLine for every line written from now on until signal aborts; false when the unit has
   * no journal on this machine (nothing is called).
   */
  follow(unit: string, onLine: (line: JournalLine) => void, signal: AbortSignal): boolean
}
