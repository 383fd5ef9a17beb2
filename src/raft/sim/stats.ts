/**
 * Counters of what a run actually exercised, so that a green run can be told apart from a run in
 * which nothing happened (no snapshot ever sent, no torn write, no membership change...).
 */

export interface SimStats {
  ticks: number
  steps: number
  messagesDelivered: number
  messagesLost: number
  leadersElected: number
  writesAcked: number
  readsAnswered: number
  opsTimedOut: number
  opsRefused: number
  crashesClean: number
  crashesTorn: number
  /** Torn crashes that left part of a Ready's entries or snapshot on disk, but not all of it. */
  tornWritesPartial: number
  crashesLossy: number
  pauses: number
  restarts: number
  partitions: number
  snapshotsDelivered: number
  compactions: number
  learnersAdded: number
  learnersPromoted: number
  votersRemoved: number
  leadersRemoved: number
  transfersAsked: number
  readiesDeferred: number
  /** Reports that a leader's process is down which made a follower forget that leader. */
  leadersReportedDown: number
}

export function emptyStats(): SimStats {
  return {
    ticks: 0,
    steps: 0,
    messagesDelivered: 0,
    messagesLost: 0,
    leadersElected: 0,
    writesAcked: 0,
    readsAnswered: 0,
    opsTimedOut: 0,
    opsRefused: 0,
    crashesClean: 0,
    crashesTorn: 0,
    tornWritesPartial: 0,
    crashesLossy: 0,
    pauses: 0,
    restarts: 0,
    partitions: 0,
    snapshotsDelivered: 0,
    compactions: 0,
    learnersAdded: 0,
    learnersPromoted: 0,
    votersRemoved: 0,
    leadersRemoved: 0,
    transfersAsked: 0,
    readiesDeferred: 0,
    leadersReportedDown: 0,
  }
}

export function addStats(into: SimStats, from: SimStats): void {
  for (const key of Object.keys(into) as (keyof SimStats)[]) into[key] += from[key]
}

export function formatStats(stats: SimStats): string {
  return Object.entries(stats)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ')
}
