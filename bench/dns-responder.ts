/**
 * bench/dns-responder: what one DNS answer costs the event loop, without sockets.
 *
 * `Responder.respond` on the DNS tests' sample catalog (src/dns/test-support.ts): an A question
 * for a 4-instance service over UDP, and an SRV question for a 300-instance service over TCP
 * (300 SRV plus 300 A records). Each runs for one second cached (the same question again) and one
 * second uncached (the catalog's revision is moved before every question, which empties the
 * answer cache). Prints µs per answer. docs/dns.md has the figures.
 *
 *   npm run bench:dns
 */
import { resolveDnsOptions } from '../src/dns/limits.ts'
import { Responder, type Transport } from '../src/dns/responder.ts'
import { encodeQuery, sampleView } from '../src/dns/test-support.ts'
import { RecordType } from '../src/dns/wire.ts'

const runMs = 1000
const view = sampleView()
const responder = new Responder(view, resolveDnsOptions({}))

function perAnswerUs(query: Buffer, transport: Transport, uncached: boolean): number {
  let answers = 0
  const start = performance.now()
  while (performance.now() - start < runMs) {
    if (uncached) view.setNode({ name: 'n1', address: '10.0.0.1', meta: { zone: `z${answers}` } })
    if (responder.respond(query, transport) === null) throw new Error('no answer')
    answers++
  }
  return ((performance.now() - start) / answers) * 1000
}

const cases: [string, Buffer, Transport][] = [
  ['web.service A, UDP (4 instances)', encodeQuery('web.service.cairn', RecordType.A), 'udp'],
  ['big.service SRV, TCP (300 instances)', encodeQuery('big.service.cairn', RecordType.SRV), 'tcp'],
]
console.log(`dns responder: µs per answer, Node ${process.version}`)
for (const [label, query, transport] of cases) {
  const uncached = perAnswerUs(query, transport, true)
  const cached = perAnswerUs(query, transport, false)
  console.log(
    `${label.padEnd(40)} uncached ${uncached.toFixed(1).padStart(8)}   cached ${cached.toFixed(1).padStart(6)}`,
  )
}
