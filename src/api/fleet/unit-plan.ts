/**
 * What a PUT /fleet/v1/units/<name> does, decided without I/O: given the request and the records
 * read (the unit, and for an instance its template), the record to write and the status, or the
 * typed refusal. The route reads, plans, and writes in a transaction that guards the read.
 *
 * The rules (docs/api-fleet.md):
 * - Plain units are immutable: new content for an existing unit is FLEET_UNIT_IMMUTABLE (409)
 *   unless `replace` (fleet's --replace), which writes the new version.
 * - Templates are always `inactive`; new content is always accepted and keeps the old version as
 *   `previous` (the engine rolls the instances from it to the new one).
 * - Instances run their template's file: they are recorded as `{template}`, may be created with
 *   only a desiredState while the template exists, and content given for one must be the
 *   template's.
 * - Creating needs content (FLEET_FIELDS_MISSING, 409) and, except for templates, a desiredState
 *   (400); changing an existing unit needs a desiredState or content (409, fleet's rule).
 * - Every unit file is parsed before anything is planned: an invalid one is UNIT_INVALID (400).
 *
 * Status: 201 when the unit is created or its content replaced (a new version), 204 otherwise.
 */
import { CairnError } from '../../errors.ts'
import { type DesiredState, type UnitRecord, unitVersion } from '../../scheduler/records.ts'
import { checkUnitTemplate, parseUnitFile } from '../../scheduler/unit-file.ts'
import { templateOf, type UnitName } from '../../scheduler/unit-name.ts'
import { invalid } from './http.ts'
import type { UnitBody } from './unit-body.ts'

export interface PutInput {
  name: UnitName
  body: UnitBody
  /** The unit's record as read (undefined: absent or not a well-formed record). */
  existing: UnitRecord | undefined
  /** For an instance: its template's record as read. */
  template: UnitRecord | undefined
  replace: boolean
  nowMs: number
}

export type PutPlan = { write: UnitRecord; status: 201 | 204 } | { write: undefined; status: 204 }

const unchanged: PutPlan = { write: undefined, status: 204 }

export function planUnitPut(input: PutInput): PutPlan {
  switch (input.name.kind) {
    case 'template':
      return planTemplate(input)
    case 'instance':
      return planInstance(input)
    case 'plain':
      return planPlain(input)
  }
}

function fieldsMissing(name: string, exists: boolean): CairnError {
  return new CairnError(
    'FLEET_FIELDS_MISSING',
    exists
      ? `${name}: must provide desiredState (or new content) to update an existing unit`
      : `${name}: unit does not exist and options field empty`,
  )
}

function withState(existing: UnitRecord, desiredState: DesiredState | undefined): PutPlan {
  if (desiredState === undefined || desiredState === existing.desiredState) return unchanged
  return { write: { ...existing, desiredState }, status: 204 }
}

function planPlain({ name, body, existing, replace, nowMs }: PutInput): PutPlan {
  if (body.text !== undefined) parseUnitFile(body.text, { name: name.name })
  if (existing === undefined) {
    if (body.text === undefined) throw fieldsMissing(name.name, false)
    if (body.desiredState === undefined)
      throw invalid(`${name.name}: desiredState is required to create a unit`)
    const write: UnitRecord = {
      name: name.name,
      desiredState: body.desiredState,
      version: unitVersion(body.text),
      submittedMs: nowMs,
    }
    return { write, status: 201 }
  }
  if (body.text === undefined && body.desiredState === undefined) throw fieldsMissing(name.name, true)
  if (body.text !== undefined && existing.version?.text !== body.text) {
    if (!replace) {
      throw new CairnError(
        'FLEET_UNIT_IMMUTABLE',
        `${name.name}: the submitted content differs from the unit's (destroy it, or PUT with ?replace=true)`,
      )
    }
    const write: UnitRecord = {
      name: name.name,
      desiredState: body.desiredState ?? existing.desiredState,
      version: unitVersion(body.text),
      submittedMs: nowMs,
    }
    return { write, status: 201 }
  }
  return withState(existing, body.desiredState)
}

function planTemplate({ name, body, existing, nowMs }: PutInput): PutPlan {
  if (body.desiredState !== undefined && body.desiredState !== 'inactive') {
    throw invalid(
      `${name.name} is a template: it is not run itself (its desiredState is always inactive); start its instances, like ${name.prefix}@1.service`,
    )
  }
  if (body.text !== undefined) checkUnitTemplate(body.text, { name: name.name })
  if (existing === undefined) {
    if (body.text === undefined) throw fieldsMissing(name.name, false)
    const write: UnitRecord = {
      name: name.name,
      desiredState: 'inactive',
      version: unitVersion(body.text),
      submittedMs: nowMs,
    }
    return { write, status: 201 }
  }
  if (body.text === undefined && body.desiredState === undefined) throw fieldsMissing(name.name, true)
  if (body.text === undefined || existing.version?.text === body.text) {
    return existing.desiredState === 'inactive' ? unchanged : withState(existing, 'inactive')
  }
  const write: UnitRecord = {
    name: name.name,
    desiredState: 'inactive',
    version: unitVersion(body.text),
    submittedMs: nowMs,
  }
  if (existing.version !== undefined) write.previous = existing.version
  return { write, status: 201 }
}

function planInstance({ name, body, existing, template, nowMs }: PutInput): PutPlan {
  const templateName = templateOf(name) as string
  const templateText = template?.version?.text
  if (body.text !== undefined) {
    if (templateText === undefined) {
      throw new CairnError(
        'FLEET_TEMPLATE_MISSING',
        `${name.name}: submit its template ${templateName} first (an instance runs its template's file)`,
      )
    }
    if (body.text !== templateText) {
      throw new CairnError(
        'FLEET_UNIT_IMMUTABLE',
        `${name.name}: an instance runs its template's file; the content given differs from ${templateName}'s (submit a new ${templateName} to change it)`,
      )
    }
  }
  if (existing === undefined) {
    if (templateText === undefined) {
      throw new CairnError(
        'FLEET_FIELDS_MISSING',
        `${name.name}: unit does not exist and its template ${templateName} is not submitted`,
      )
    }
    if (body.desiredState === undefined)
      throw invalid(`${name.name}: desiredState is required to create a unit`)
    parseUnitFile(templateText, { name: name.name, file: templateName })
    const write: UnitRecord = {
      name: name.name,
      desiredState: body.desiredState,
      template: templateName,
      submittedMs: nowMs,
    }
    return { write, status: 201 }
  }
  if (body.text === undefined && body.desiredState === undefined) throw fieldsMissing(name.name, true)
  return withState(existing, body.desiredState)
}
