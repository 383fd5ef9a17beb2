/** The workloads by name (`--workload`). */
import { RegisterWorkload } from './register.ts'
import { SetWorkload } from './set.ts'
import { WatchWorkload } from './watch.ts'
import type { Workload, WorkloadContext, WorkloadName } from './workload.ts'

export { type Workload, type WorkloadContext, type WorkloadName, workloadNames } from './workload.ts'

export function createWorkload(name: WorkloadName, ctx: WorkloadContext): Workload {
  switch (name) {
    case 'register':
      return new RegisterWorkload(ctx)
    case 'set':
      return new SetWorkload(ctx)
    case 'watch':
      return new WatchWorkload(ctx)
  }
}
