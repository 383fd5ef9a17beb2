/**
 * Field schemas: what selectors an endpoint's entries have, and what each field supports.
 *
 * go-bexpr derives this from the Go struct of the entries (GenerateFieldConfigurations) and Consul
 * answers 400 for a selector that is not a field, an operator the field does not support, or a
 * value that does not convert to the field's type. We filter JSON, which carries no types, so a
 * caller that wants the same checks passes a FieldSchema; without one, selectors are not checked
 * and those faults can only show when evaluating (see evaluator.ts).
 *
 * The operators per type are go-bexpr's, plus `is empty` on strings (go-bexpr's field
 * configuration refuses it, though its evaluator handles it and newer releases allow it):
 *
 *   string          == != in contains matches is-empty      (in/contains: substring)
 *   number, boolean == !=                                    (the value must convert)
 *   stringList      in contains is-empty                     (membership)
 *   stringMap       in contains is-empty; one more segment selects a value (a string)
 *   object          none; further segments select fields
 *   objectList      is-empty; further segments select fields of every element (see evaluator.ts)
 *
 * Each operator comes with its negation (`!=`, `not in`, `not contains`, `not matches`,
 * `is not empty`).
 */
import type { MatchOperator } from './expression.ts'

export type FieldType =
  | 'string'
  | 'number'
  | 'boolean'
  | 'stringList'
  | 'stringMap'
  | { readonly object: FieldSchema }
  | { readonly objectList: FieldSchema }

/** The fields of an object, by their exact (case-sensitive) JSON names. */
export interface FieldSchema {
  readonly [field: string]: FieldType
}

const equality: readonly MatchOperator[] = ['==', '!=']
const membership: readonly MatchOperator[] = ['in', 'not in']
const emptiness: readonly MatchOperator[] = ['is empty', 'is not empty']
const regex: readonly MatchOperator[] = ['matches', 'not matches']

export function operatorsOf(type: FieldType): readonly MatchOperator[] {
  if (typeof type === 'object') return 'objectList' in type ? emptiness : []
  switch (type) {
    case 'string':
      return [...equality, ...membership, ...regex, ...emptiness]
    case 'number':
    case 'boolean':
      return equality
    case 'stringList':
    case 'stringMap':
      return [...membership, ...emptiness]
  }
}

export function typeName(type: FieldType): string {
  if (typeof type === 'object') return 'objectList' in type ? 'a list of objects' : 'an object'
  const names: Record<typeof type, string> = {
    string: 'a string',
    number: 'a number',
    boolean: 'a boolean',
    stringList: 'a list of strings',
    stringMap: 'a map of strings',
  }
  return names[type]
}

export type Resolved =
  | { readonly ok: true; readonly type: FieldType }
  /** `segments` is the prefix of the selector up to and including the first one that is not a field. */
  | { readonly ok: false; readonly segments: number }

/** The type a selector reaches in `schema`, walking objects, lists of objects and string maps. */
export function resolveSelector(schema: FieldSchema, path: readonly string[]): Resolved {
  let type: FieldType = { object: schema }
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!
    if (type === 'stringMap') {
      type = 'string'
      continue
    }
    if (typeof type !== 'object') return { ok: false, segments: i + 1 }
    const fields: FieldSchema = 'object' in type ? type.object : type.objectList
    const next = Object.hasOwn(fields, segment) ? fields[segment] : undefined
    if (next === undefined) return { ok: false, segments: i + 1 }
    type = next
  }
  return { ok: true, type }
}
