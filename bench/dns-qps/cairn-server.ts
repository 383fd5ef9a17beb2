/**
 * bench/dns-qps/cairn-server: Cairn's DNS server alone in its own process, so that the load
 * generator does not share its event loop. Builds a MemoryCatalogView of the bench zone
 * (zone.ts), starts DnsServer with its defaults on 127.0.0.1 and a free port (never 8600), and
 * prints `ready <port>` on stdout. Exits when its stdin closes (the bench ended, or died) or on
 * SIGTERM/SIGINT, closing the server first.
 *
 *   node --import tsx bench/dns-qps/cairn-server.ts      (bench/dns-qps/servers.ts starts it)
 */
import { MemoryCatalogView } from '../../src/catalog/view.ts'
import { DnsServer } from '../../src/dns/server.ts'
import { benchZone } from './zone.ts'

const zone = benchZone()
const view = new MemoryCatalogView()
for (const node of zone.nodes) view.setNode({ name: node.name, address: node.address, meta: {} })
for (const instances of zone.services.values()) {
  for (const instance of instances) {
    view.setInstance({
      id: instance.id,
      service: instance.service,
      node: instance.node.name,
      address: instance.node.address,
      port: instance.port,
      tags: [],
      status: 'passing',
    })
  }
}

const server = new DnsServer(view, { domain: zone.domain })
const port = await server.listen('127.0.0.1', 0)

let closing = false
async function shutdown(): Promise<void> {
  if (closing) return
  closing = true
  await server.close()
  process.exit(0)
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
process.stdin.once('end', shutdown)
process.stdin.resume()
process.stdout.write(`ready ${port}\n`)
