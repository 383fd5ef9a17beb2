import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { addParams, mergeForm } from './form.ts'

/** What the route used before the split of plain text: every pair of URLSearchParams, in order. */
function reference(text: string): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null)
  for (const [name, value] of new URLSearchParams(text)) (form[name] ??= []).push(value)
  return form
}

function parsed(text: string): Record<string, string[]> {
  const form: Record<string, string[]> = Object.create(null)
  addParams(form, text)
  return form
}

// Pieces that exercise the separators, the decoded characters and some text.
const piece = fc.constantFrom(
  '&',
  '=',
  '?',
  '%',
  '+',
  '%41',
  '%zz',
  'a',
  'value',
  'é',
  '日',
  '\uD800',
  '\uDC00',
  '😀',
  ' ',
  '__proto__',
)

describe('addParams', () => {
  it('gives exactly the pairs URLSearchParams gives, in order, for any text', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const text = pieces.join('')
        expect(parsed(text)).toEqual(reference(text))
      }),
      { numRuns: 5_000 },
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        expect(parsed(text)).toEqual(reference(text))
      }),
    )
  })

  it('handles the cases the split itself decides', () => {
    expect(parsed('?a=1&&b&=2&c==3&')).toEqual(reference('?a=1&&b&=2&c==3&'))
    expect(parsed('??a=1')).toEqual({ '?a': ['1'] })
    expect(parsed('value=x&value=y')).toEqual({ value: ['x', 'y'] })
    expect(parsed('')).toEqual({})
    expect(parsed('?')).toEqual({})
  })
})

describe('mergeForm', () => {
  it('puts body values before query values, per name', () => {
    const form = mergeForm('value=body&ttl=5', '/v2/keys/a?value=query&dir=false')
    expect(form.value).toEqual(['body', 'query'])
    expect(form.ttl).toEqual(['5'])
    expect(form.dir).toEqual(['false'])
    expect(Object.getPrototypeOf(form)).toBeNull()
  })
})

describe('addParams on a large hostile body', () => {
  it('stays linear: 500,000 pairs without "=" and one with it', () => {
    const text = `${'a&'.repeat(500_000)}b=1`
    const form: Record<string, string[]> = Object.create(null)
    addParams(form, text)
    expect(form.a).toHaveLength(500_000)
    expect(form.b).toEqual(['1'])
  })
})
