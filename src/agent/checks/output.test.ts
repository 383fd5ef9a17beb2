/**
 * Proves that check output never exceeds its cap, keeps the start, and is never cut inside a
 * UTF-8 character; and that a TTL check expires on the real clock.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { capText, OutputBuffer } from './output.ts'
import { startRunner } from './test-helpers.ts'

describe('output cap', () => {
  it('cuts on a character boundary', () => {
    expect(capText('héllo', 2)).toBe('h') // é is 2 bytes: it does not fit whole
    expect(capText('héllo', 3)).toBe('hé')
    expect(capText('a😀', 4)).toBe('a')
    expect(capText('a😀', 5)).toBe('a😀')
  })

  it('any text written in any chunks yields a prefix of it, within the cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme' })),
        fc.integer({ min: 0, max: 64 }),
        (parts, cap) => {
          const buffer = new OutputBuffer(cap)
          for (const part of parts) buffer.write(Buffer.from(part, 'utf8'))
          const text = buffer.text()
          const whole = parts.join('')
          expect(Buffer.byteLength(text)).toBeLessThanOrEqual(cap)
          expect(whole.startsWith(text)).toBe(true)
          expect(text).toBe(capText(whole, cap))
          expect(buffer.bytesSeen).toBe(Buffer.byteLength(whole))
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('TTL on the real clock', () => {
  it('goes critical when not refreshed within TTL, and back on pass', async () => {
    const { runner, recorder } = startRunner({ Name: 't', TTL: '60ms' })
    runner.updateTtl('passing', 'fine')
    expect((await recorder.status('passing')).output).toBe('fine')
    const expired = await recorder.status('critical', 2_000)
    expect(expired.output).toContain('TTL expired')
    runner.updateTtl('warning', 'meh')
    expect((await recorder.status('warning')).output).toBe('meh')
    await runner.stop()
  })
})
