/**
 * fleet's MachineMetadata rule: `MachineMetadata="region=eu" "region=us" "disk=ssd"` admits a machine
 * whose metadata has region ∈ {eu, us} AND disk = ssd. Different keys are ANDed; repeating a key ORs
 * its values, wherever the repeats appear in the file. Only equality, as in fleet (no negation).
 *
 * Invariants:
 * - A rule lists each key once, in the order keys first appear; each key's values are distinct, in
 *   the order they first appear, and never empty.
 * - The empty rule admits every machine.
 * - Lookups use own properties only (`constructor=x` never matches Object.prototype).
 */

export interface MetadataClause {
  readonly key: string
  readonly values: readonly string[]
}

export type MetadataRule = readonly MetadataClause[]

/** Groups `key=value` pairs into a rule (AND across keys, OR within a key). */
export function metadataRule(pairs: ReadonlyArray<readonly [string, string]>): MetadataRule {
  const byKey = new Map<string, string[]>()
  for (const [key, value] of pairs) {
    const values = byKey.get(key)
    if (values === undefined) byKey.set(key, [value])
    else if (!values.includes(value)) values.push(value)
  }
  return [...byKey].map(([key, values]) => ({ key, values }))
}

/** Whether a machine with this metadata satisfies the rule. */
export function metadataMatches(rule: MetadataRule, metadata: Readonly<Record<string, string>>): boolean {
  return rule.every(
    (clause) => Object.hasOwn(metadata, clause.key) && clause.values.includes(metadata[clause.key] as string),
  )
}
