/**
 * Field schemas of the Consul entries that endpoints filter, named as Consul's JSON names them
 * (consul docs api-docs/catalog.mdx, health.mdx, agent/service.mdx, agent/check.mdx).
 *
 * Each is the set of selectors Cairn's entries carry; Consul's structs have more (Proxy, Connect,
 * the service's TaggedAddresses, Namespace, Partition...), which Cairn does not serve, so a filter
 * naming them is refused as it would be on a Consul without those features.
 */
import type { FieldSchema } from './schema.ts'

const weights: FieldSchema = { Passing: 'number', Warning: 'number' }

/** /v1/catalog/nodes entries; also the `Node` of a health entry. */
export const nodeSchema: FieldSchema = {
  ID: 'string',
  Node: 'string',
  Address: 'string',
  Datacenter: 'string',
  TaggedAddresses: 'stringMap',
  Meta: 'stringMap',
}

/** /v1/health/checks/:service, /v1/health/node/:node, /v1/health/state/:state entries. */
export const healthCheckSchema: FieldSchema = {
  Node: 'string',
  CheckID: 'string',
  Name: 'string',
  Status: 'string',
  Notes: 'string',
  Output: 'string',
  ServiceID: 'string',
  ServiceName: 'string',
  ServiceTags: 'stringList',
  Type: 'string',
}

/** /v1/agent/checks values: the same fields as a health check. */
export const agentCheckSchema: FieldSchema = healthCheckSchema

/** /v1/catalog/service/:name entries: node fields and service fields side by side. */
export const serviceNodeSchema: FieldSchema = {
  ID: 'string',
  Node: 'string',
  Address: 'string',
  Datacenter: 'string',
  TaggedAddresses: 'stringMap',
  NodeMeta: 'stringMap',
  ServiceID: 'string',
  ServiceName: 'string',
  ServiceAddress: 'string',
  ServicePort: 'number',
  ServiceTags: 'stringList',
  ServiceMeta: 'stringMap',
  ServiceWeights: { object: weights },
  ServiceEnableTagOverride: 'boolean',
  ServiceKind: 'string',
  CreateIndex: 'number',
  ModifyIndex: 'number',
}

/** /v1/agent/services values. */
export const agentServiceSchema: FieldSchema = {
  ID: 'string',
  Service: 'string',
  Tags: 'stringList',
  Meta: 'stringMap',
  Port: 'number',
  Address: 'string',
  Weights: { object: weights },
  EnableTagOverride: 'boolean',
  Kind: 'string',
  Datacenter: 'string',
}

/** /v1/health/service/:name entries: {Node, Service, Checks}. */
export const healthEntrySchema: FieldSchema = {
  Node: { object: nodeSchema },
  Service: {
    object: {
      ID: 'string',
      Service: 'string',
      Tags: 'stringList',
      Address: 'string',
      Meta: 'stringMap',
      Port: 'number',
      Weights: { object: weights },
      EnableTagOverride: 'boolean',
      Kind: 'string',
    },
  },
  Checks: { objectList: healthCheckSchema },
}
