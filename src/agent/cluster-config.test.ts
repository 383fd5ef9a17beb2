/**
 * Proves cluster identity: --initial-cluster parsing refuses malformed lists with a message naming
 * the flag; member ids are stable, positive, distinct per name and token; the cluster id does not
 * depend on the order of the list but does on every name, URL and the token.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isCairnError } from '../errors.ts'
import { clusterId, memberId, parseInitialCluster } from './cluster-config.ts'

describe('parseInitialCluster', () => {
  it('parses name=url pairs, with or without a scheme, ignoring blanks', () => {
    expect(parseInitialCluster('n1=http://127.0.0.1:7001, n2=127.0.0.1:7002,')).toEqual([
      { name: 'n1', peerUrl: 'http://127.0.0.1:7001' },
      { name: 'n2', peerUrl: '127.0.0.1:7002' },
    ])
  })

  it.each([
    ['', 'lists no members'],
    ['n1', 'bad member name'],
    ['=http://a:1', 'bad member name'],
    ['n1=http://a', 'bad peer URL'],
    ['n1=http://a:99999', 'bad peer URL'],
    ['n1=http://a:1,n1=http://b:2', 'listed twice'],
    ['n 1=http://a:1', 'bad member name'],
  ])('refuses %j: %s', (text, message) => {
    let error: unknown
    try {
      parseInitialCluster(text)
    } catch (e) {
      error = e
    }
    expect(isCairnError(error, 'CONFIG_INVALID')).toBe(true)
    expect((error as Error).message).toContain('--initial-cluster')
    expect((error as Error).message).toContain(message)
  })

  it('never throws anything but CONFIG_INVALID on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseInitialCluster(text)
        } catch (e) {
          if (!isCairnError(e, 'CONFIG_INVALID')) throw e
        }
      }),
    )
  })
})

describe('member and cluster ids', () => {
  const members = parseInitialCluster('a=http://h:1,b=http://h:2,c=http://h:3')

  it('member ids are stable, positive safe integers, distinct per peer address and per token', () => {
    const ids = members.map((m) => memberId('tok', m.peerUrl))
    expect(ids).toEqual(members.map((m) => memberId('tok', m.peerUrl)))
    for (const id of ids) expect(Number.isSafeInteger(id) && id > 0).toBe(true)
    expect(new Set(ids).size).toBe(3)
    expect(memberId('other', 'http://h:1')).not.toBe(memberId('tok', 'http://h:1'))
    // The same address written with or without a scheme or trailing slash is the same member.
    expect(memberId('tok', 'h:1')).toBe(memberId('tok', 'http://h:1/'))
  })

  it('the cluster id ignores list order but not names, URLs or the token', () => {
    const id = clusterId('tok', members)
    expect(clusterId('tok', [...members].reverse())).toBe(id)
    expect(clusterId('tok2', members)).not.toBe(id)
    expect(clusterId('tok', [...members.slice(0, 2), { name: 'c', peerUrl: 'http://h:4' }])).not.toBe(id)
    expect(clusterId('tok', members.slice(0, 2))).not.toBe(id)
  })
})
