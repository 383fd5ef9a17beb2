/**
 * Blocking until units reach a state, as fleetctl's load/start/stop/unload did: poll each unit's
 * currentState every blockPollMs, print fleet's line for each as it arrives
 * (`Unit web@1.service launched on n1/10.0.0.1`), and give up after `attempts` rounds (0: never,
 * fleet's --block-attempts default) with an error naming the units still waiting.
 */
import type { DesiredState } from '../scheduler/records.ts'
import { ClientError } from './endpoint.ts'
import type { FleetClient, FleetMachine } from './unit-client.ts'

/** fleetctl's pause between two rounds of polling. */
export const blockPollMs = 500
/** Units polled at once in one round. */
export const blockPollConcurrency = 16

/** `n1/10.0.0.1` (fleet's machine legend: id, then the primary IP when known). */
export function machineLegend(id: string | undefined, machines: readonly FleetMachine[]): string {
  if (id === undefined) return '-'
  const ip = machines.find((m) => m.id === id)?.primaryIP
  return ip === undefined || ip === '' ? id : `${id}/${ip}`
}

export async function waitForState(
  client: FleetClient,
  names: readonly string[],
  target: DesiredState,
  attempts: number,
  print: (line: string) => void,
): Promise<void> {
  let pending = [...names]
  const vanished: string[] = []
  let machines: FleetMachine[] | undefined
  for (let round = 0; pending.length > 0; round++) {
    if (attempts > 0 && round >= attempts) {
      throw new ClientError(
        `Error waiting for units: ${pending.length} did not reach ${target} after ${attempts} attempts: ${pending.slice(0, 10).join(', ')}`,
      )
    }
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, blockPollMs))
    const still: string[] = []
    for (let i = 0; i < pending.length; i += blockPollConcurrency) {
      const batch = pending.slice(i, i + blockPollConcurrency)
      const units = await Promise.all(batch.map((name) => client.unit(name)))
      for (const [index, unit] of units.entries()) {
        const name = batch[index] as string
        if (unit === undefined) vanished.push(name)
        else if (unit.currentState !== target) still.push(name)
        else if (target === 'inactive') print(`Unit ${name} inactive`)
        else {
          if (machines === undefined || !machines.some((m) => m.id === unit.machineID))
            machines = await client.machines()
          print(`Unit ${name} ${target} on ${machineLegend(unit.machineID, machines)}`)
        }
      }
    }
    pending = still
  }
  if (vanished.length > 0)
    throw new ClientError(`Error: destroyed while waiting: ${vanished.slice(0, 10).join(', ')}`)
}
