/**
 * Proves unit names (plain, template, instance) and their refusals, the specifiers %n %N %p %i %%
 * with systemd's meanings, and brace expansion of CLI names with its bounds checked before any work.
 */
import { describe, expect, it } from 'vitest'
import { unitLimits } from './limits.ts'
import { UnitNameError } from './unit-error.ts'
import {
  expandSpecifiers,
  expandUnitNames,
  instanceOf,
  isSystemdUnitName,
  parseUnitName,
  templateOf,
} from './unit-name.ts'

describe('unit names', () => {
  it.each([
    ['web.service', 'plain', 'web', ''],
    ['web@.service', 'template', 'web', ''],
    ['web@3.service', 'instance', 'web', '3'],
    ['my.app@10.0.0.1.service', 'instance', 'my.app', '10.0.0.1'],
    ['a:b_c-d.service', 'plain', 'a:b_c-d', ''],
  ])('%s is a %s with prefix %j and instance %j', (text, kind, prefix, instance) => {
    expect(parseUnitName(text)).toEqual({ name: text, kind, prefix, instance, suffix: 'service' })
  })

  it.each([
    ['web', 'only .service'],
    ['web.socket', 'only .service'],
    ['.service', 'empty'],
    ['@1.service', 'empty'],
    ['a@b@c.service', 'more than one @'],
    ['we b.service', 'A-Z a-z'],
    ['web/x.service', 'A-Z a-z'],
    [`${'a'.repeat(unitLimits.unitNameCharsMax)}.service`, 'unitNameCharsMax'],
  ])('refuses %j', (text, reason) => {
    expect(() => parseUnitName(text)).toThrow(UnitNameError)
    expect(() => parseUnitName(text)).toThrow(reason)
  })

  it('maps instances to their template and back', () => {
    const instance = parseUnitName('web@3.service')
    expect(templateOf(instance)).toBe('web@.service')
    expect(templateOf(parseUnitName('web.service'))).toBeUndefined()
    expect(instanceOf(parseUnitName('web@.service'), '7').name).toBe('web@7.service')
    expect(() => instanceOf(parseUnitName('web.service'), '7')).toThrow('not a template')
    expect(() => instanceOf(parseUnitName('web@.service'), 'a b')).toThrow(UnitNameError)
  })

  it('knows systemd names of other types for After= and Wants=', () => {
    expect(isSystemdUnitName('network-online.target')).toBe(true)
    expect(isSystemdUnitName('docker.socket')).toBe(true)
    expect(isSystemdUnitName('no-suffix')).toBe(false)
    expect(isSystemdUnitName('bad name.service')).toBe(false)
  })
})

describe('specifiers', () => {
  const instance = parseUnitName('web@3.service')
  it.each([
    ['%n', 'web@3.service'],
    ['%N', 'web@3'],
    ['%p', 'web'],
    ['%i', '3'],
    ['100%%', '100%'],
    ['%p-%i.log', 'web-3.log'],
    ['no specifiers', 'no specifiers'],
  ])('%j in web@3.service → %j', (text, expanded) => {
    expect(expandSpecifiers(text, instance)).toBe(expanded)
  })

  it('%i is empty for plain units and %N keeps dots of the prefix', () => {
    const plain = parseUnitName('my.app.service')
    expect(expandSpecifiers('[%i] %N %p', plain)).toBe('[] my.app my.app')
  })

  it.each([
    ['%H', 'unsupported specifier %H'],
    ['%I', 'unsupported specifier %I'],
    ['50%', 'a lone %'],
  ])('refuses %j', (text, reason) => {
    expect(() => expandSpecifiers(text, instance)).toThrow(reason)
  })
})

describe('brace expansion', () => {
  it.each([
    ['web.service', ['web.service']],
    ['web@{1..3}.service', ['web@1.service', 'web@2.service', 'web@3.service']],
    ['web@{3..1}.service', ['web@3.service', 'web@2.service', 'web@1.service']],
    ['web@{08..10}.service', ['web@08.service', 'web@09.service', 'web@10.service']],
    ['web@{a,b}.service', ['web@a.service', 'web@b.service']],
    ['web{,-canary}.service', ['web.service', 'web-canary.service']],
    ['{api,web}@{1..2}.service', ['api@1.service', 'api@2.service', 'web@1.service', 'web@2.service']],
    ['web@{1,1,2}.service', ['web@1.service', 'web@2.service']],
    ['web@{5..5}.service', ['web@5.service']],
  ])('%s', (pattern, names) => {
    expect(expandUnitNames(pattern)).toEqual(names)
  })

  it('produces exactly braceNamesMax names and refuses one more, before expanding', () => {
    expect(expandUnitNames(`web@{1..${unitLimits.braceNamesMax}}.service`)).toHaveLength(
      unitLimits.braceNamesMax,
    )
    expect(() => expandUnitNames(`web@{1..${unitLimits.braceNamesMax + 1}}.service`)).toThrow('braceNamesMax')
    // The product of groups is checked group by group: this would be 10^12 names.
    expect(() => expandUnitNames('{1..1000}{1..1000}{1..1000}{1..1000}.service')).toThrow('braceNamesMax')
    expect(() => expandUnitNames('w@{0..999999999}.service')).toThrow('braceNamesMax')
  })

  it.each([
    ['web@{1..3.service', 'a { without its }'],
    ['web@1..3}.service', 'a } without its {'],
    ['web@{a{b,c}}.service', 'nested'],
    ['web@{x}.service', 'neither a range'],
    ['web@{a..c}.service', 'neither a range'],
    ['{a,b}{c,d}{e,f}{g,h}{i,j}.service', 'braceGroupsMax'],
    ['web@{a b,c}.service', 'expands to "web@a b.service"'],
    ['web@{1..2}.socket', 'only .service'],
    [`{${'a,'.repeat(600)}a}.service`, 'bracePatternCharsMax'],
  ])('refuses %j', (pattern, reason) => {
    expect(() => expandUnitNames(pattern)).toThrow(UnitNameError)
    expect(() => expandUnitNames(pattern)).toThrow(reason)
  })
})
