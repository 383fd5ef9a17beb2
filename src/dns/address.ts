/**
 * IP literals as DNS needs them: the 16 bytes of an IPv6 address, and the hex form used by
 * `<hex>.addr.<domain>` names (Consul's encoding: 8 hex digits for IPv4, 32 for IPv6).
 * Inputs are IP literals already checked by the catalog view (node:net isIP).
 */

/** `0a000001` → `10.0.0.1`; 32 hex digits → an IPv6 address; anything else → undefined. */
export function addressFromHex(hex: string): string | undefined {
  if (!/^[0-9a-f]+$/.test(hex)) return undefined
  if (hex.length === 8) {
    return [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.')
  }
  if (hex.length === 32) {
    const groups: string[] = []
    for (let i = 0; i < 32; i += 4) groups.push(Number.parseInt(hex.slice(i, i + 4), 16).toString(16))
    return groups.join(':')
  }
  return undefined
}

/** The inverse of addressFromHex, for SRV targets. `address` is an IP literal. */
export function hexFromAddress(address: string): string {
  if (!address.includes(':')) {
    return address
      .split('.')
      .map((part) => Number(part).toString(16).padStart(2, '0'))
      .join('')
  }
  return ipv6Bytes(address).toString('hex')
}

/** The 16 bytes of an IPv6 literal (with `::` and an optional dotted IPv4 tail). */
export function ipv6Bytes(address: string): Buffer {
  let text = address
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted !== null) {
    const v4 = dotted[2]!.split('.').map(Number)
    text = `${dotted[1]}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length
  const groups = [...headGroups, ...new Array<string>(zeros).fill('0'), ...tailGroups]
  const bytes = Buffer.alloc(16)
  groups.forEach((group, i) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2)
  })
  return bytes
}
