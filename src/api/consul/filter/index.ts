/**
 * Consul's `?filter=` expression language (hashicorp/go-bexpr): parseFilter and what goes with it.
 * docs/consul-filter.md describes the grammar, the semantics and what differs from go-bexpr.
 */
export {
  agentCheckSchema,
  agentServiceSchema,
  healthCheckSchema,
  healthEntrySchema,
  nodeSchema,
  serviceNodeSchema,
} from './consul-schemas.ts'
export { FilterError, type FilterErrorStage, type FilterPosition, isFilterError } from './error.ts'
export { type Filter, type FilterOptions, parseFilter } from './filter.ts'
export {
  expressionBytesMax,
  nestingDepthMax,
  regexInstructionsMax,
  regexPatternBytesMax,
  regexRepeatMax,
  termsMax,
} from './limits.ts'
export type { FieldSchema, FieldType } from './schema.ts'
