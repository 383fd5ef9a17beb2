/**
 * The agent's own services and checks as the /v1/agent endpoints see them. The agent process
 * implements it (src/agent/local-registry.ts); the API only calls it, so the API never imports
 * the agent. Every method validates its input and throws a CairnError (CATALOG_INVALID,
 * CHECK_INVALID, CATALOG_SERVICE_NOT_FOUND, CATALOG_CHECK_NOT_FOUND, CHECK_NOT_TTL) before it
 * changes anything.
 */
import type { CheckRecord, CheckStatus, ServiceRecord } from '../../catalog/records.ts'

/** GET /v1/agent/services values: the service record plus the datacenter. */
export interface AgentServiceView extends ServiceRecord {
  Datacenter: string
}

/** GET /v1/agent/checks values. */
export interface AgentCheckView extends CheckRecord {
  Node: string
}

export interface AgentMemberView {
  Name: string
  Addr: string
  Port: number
  Tags: Record<string, string>
  /** Serf's codes: 1 alive, 2 leaving, 3 left, 4 failed. */
  Status: number
  ProtocolMin: number
  ProtocolMax: number
  ProtocolCur: number
  DelegateMin: number
  DelegateMax: number
  DelegateCur: number
}

export interface LocalAgent {
  /** PUT /v1/agent/service/register: the Consul body as parsed JSON. */
  registerService(body: unknown, options: { replaceExistingChecks: boolean }): Promise<void>
  /** Returns false when there was no such service (Consul answers 200 anyway). */
  deregisterService(id: string): Promise<boolean>
  setServiceMaintenance(id: string, enable: boolean, reason: string): Promise<void>
  setNodeMaintenance(enable: boolean, reason: string): Promise<void>
  services(): AgentServiceView[]
  checks(): AgentCheckView[]
  /** PUT /v1/agent/check/register. */
  registerCheck(body: unknown): Promise<void>
  deregisterCheck(id: string): Promise<boolean>
  /** pass/warn/fail/update of a TTL check. */
  updateTtlCheck(id: string, status: CheckStatus, output: string): Promise<void>
  members(): AgentMemberView[]
  /** GET /v1/agent/self. */
  self(): Record<string, unknown>
}
