/**
 * bench/etcd-v2-watch-floor-server: one of three stand-in servers for the watch row's client floor
 * (etcd-v2-watch-floor.ts). It speaks just enough HTTP/1.1 for the row: a `GET ...?wait=true`
 * gets a chunked 200 head at once and is held; `GET /v2/stats/store` answers how many are held;
 * a `PUT` answers 200 and ends every held watch, here and on the peers it was told about, with one
 * pre-encoded write per socket (an etcd-shaped event, 256-byte values). Nothing else: no store,
 * no consensus, no framework. What the row measures against these servers is what the load
 * generator alone costs on this machine.
 *
 *   node etcd-v2-watch-floor-server.mjs [peerControlPort,...]
 * prints `ready <httpPort> <controlPort>` once both listen (on 127.0.0.1, free ports).
 */
import net from 'node:net'

const peerPorts = (process.argv[2] ?? '').split(',').filter(Boolean).map(Number)
const held = new Set()
const value = 'x'.repeat(256)
let index = 10

function eventBody() {
  index++
  const node = (modifiedIndex) => ({ key: '/bench/watched', value, modifiedIndex, createdIndex: 4 })
  return JSON.stringify({ action: 'set', node: node(index), prevNode: node(index - 1) })
}

function endHeldWatches() {
  const line = `${eventBody()}\n`
  const bytes = Buffer.from(`${Buffer.byteLength(line).toString(16)}\r\n${line}\r\n0\r\n\r\n`)
  for (const socket of held) socket.write(bytes)
  held.clear()
}

const peers = peerPorts.map((port) => net.connect(port, '127.0.0.1').setNoDelay(true))
const control = net.createServer((socket) => socket.on('data', endHeldWatches))

const watchHead = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
)
const reply = (socket, body) =>
  socket.write(
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )

function onRequest(socket, method, path) {
  if (method === 'GET' && path.includes('wait=true')) {
    socket.write(watchHead)
    held.add(socket)
  } else if (method === 'GET' && path.startsWith('/v2/stats/store')) {
    reply(socket, JSON.stringify({ watchers: held.size }))
  } else if (method === 'PUT') {
    reply(socket, eventBody())
    for (const peer of peers) peer.write('F')
    endHeldWatches()
  } else {
    socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
  }
}

const http = net.createServer((socket) => {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  socket.on('close', () => held.delete(socket))
  let pending = Buffer.alloc(0)
  socket.on('data', (data) => {
    pending = pending.length === 0 ? data : Buffer.concat([pending, data])
    for (;;) {
      const headEnd = pending.indexOf('\r\n\r\n')
      if (headEnd < 0) return
      const head = pending.subarray(0, headEnd).toString('latin1')
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      if (pending.length < headEnd + 4 + length) return
      pending = pending.subarray(headEnd + 4 + length)
      const [method = '', path = ''] = head.split(' ', 2)
      onRequest(socket, method, path)
    }
  })
})

let listening = 0
const onListening = () => {
  if (++listening === 2) console.log(`ready ${http.address().port} ${control.address().port}`)
}
control.listen(0, '127.0.0.1', onListening)
http.listen(0, '127.0.0.1', onListening)
