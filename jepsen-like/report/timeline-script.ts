/**
 * The script inlined in report.html: draws the timeline (SVG) from the JSON in
 * `<script type="application/json" id="timeline-data">` (a TimelineData, see html.ts), with zoom
 * buttons, and on load zooms and scrolls to the culprit window when there is one.
 *
 * Safety: user data only ever reaches the page through `textContent` and numeric attributes, never
 * through innerHTML. Plain ES2017, no dependencies. The source is a template literal: it must
 * contain no backslash, backquote or dollar-brace.
 */
export const timelineScript = `(() => {
  const data = JSON.parse(document.getElementById('timeline-data').textContent)
  const svgNS = 'http://www.w3.org/2000/svg'
  const scroller = document.getElementById('timeline-scroll')
  const svg = document.getElementById('timeline')
  const laneHeight = 18
  const axisHeight = 34
  const colours = { ok: '#3a9d5d', fail: '#d0463b', info: '#e6a23c', open: '#9a9a9a' }
  const end = Math.max(data.end, 1)
  const culprit = new Set(data.culprit ? data.culprit.opIndexes : [])
  const zoomMax = 4096
  let zoom = 1
  const basePx = () => Math.max(scroller.clientWidth - 24, 400) / end
  const add = (name, attrs, title) => {
    const node = document.createElementNS(svgNS, name)
    for (const key of Object.keys(attrs)) node.setAttribute(key, String(attrs[key]))
    if (title) {
      const tip = document.createElementNS(svgNS, 'title')
      tip.textContent = title
      node.appendChild(tip)
    }
    svg.appendChild(node)
    return node
  }
  const tickStep = (px) => {
    const raw = 90 / px
    const power = Math.pow(10, Math.floor(Math.log10(raw)))
    return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw)
  }
  function render() {
    const px = basePx() * zoom
    const height = axisHeight + data.lanes.length * laneHeight + 4
    svg.setAttribute('width', String(Math.ceil(end * px) + 24))
    svg.setAttribute('height', String(height))
    while (svg.firstChild) svg.removeChild(svg.firstChild)
    const step = tickStep(px)
    for (let t = 0; t <= end; t += step) {
      add('line', { x1: t * px, x2: t * px, y1: 14, y2: height, stroke: '#e4e4e4' })
      add('text', { x: t * px + 2, y: 11, 'font-size': 10, fill: '#666' }).textContent = t.toFixed(step < 1 ? 1 : 0) + ' ms'
    }
    for (const fault of data.faults) {
      const faultEnd = fault.end === null ? end : fault.end
      const width = Math.max((faultEnd - fault.start) * px, 2)
      add('rect', { x: fault.start * px, y: 14, width, height: height - 14, fill: 'rgba(90,110,200,0.13)' }, fault.label)
      add('text', { x: fault.start * px + 2, y: 27, 'font-size': 10, fill: '#3c4aa0' }, fault.label).textContent = fault.kind
    }
    if (data.culprit) {
      const w = data.culprit.window
      const wEnd = w.end === null ? end : w.end
      add('rect', {
        id: 'culprit-window', x: w.start * px - 2, y: 14, width: Math.max((wEnd - w.start) * px, 2) + 4,
        height: height - 14, fill: 'rgba(220,0,0,0.10)', stroke: '#d00', 'stroke-width': 2,
      }, 'culprit window')
    }
    data.lanes.forEach((lane, i) => {
      if (i % 2 === 1) add('rect', { x: 0, y: axisHeight + i * laneHeight, width: end * px + 24, height: laneHeight, fill: 'rgba(0,0,0,0.025)' })
    })
    for (const op of data.ops) {
      const [lane, invokeIndex, completeIndex, start, stop, type, label] = op
      const opEnd = stop === null ? end : stop
      const marked = culprit.has(invokeIndex) || culprit.has(completeIndex)
      add('rect', {
        x: start * px, y: axisHeight + lane * laneHeight + 3, width: Math.max((opEnd - start) * px, 1.5),
        height: laneHeight - 6, fill: colours[type] || '#999', stroke: marked ? '#000' : 'none',
        'stroke-width': marked ? 2 : 0, 'data-op': invokeIndex,
      }, label)
    }
  }
  function zoomTo(next, anchorTime) {
    const px = basePx() * zoom
    const time = anchorTime === undefined ? (scroller.scrollLeft + scroller.clientWidth / 2) / px : anchorTime
    zoom = Math.min(Math.max(next, 1), zoomMax)
    render()
    scroller.scrollLeft = time * basePx() * zoom - scroller.clientWidth / 2
  }
  function showCulprit() {
    if (!data.culprit) return
    const w = data.culprit.window
    const wEnd = w.end === null ? end : w.end
    const span = Math.max(wEnd - w.start, end / zoomMax)
    zoomTo(end / (span * 3), (w.start + wEnd) / 2)
  }
  document.getElementById('zoom-in').addEventListener('click', () => zoomTo(zoom * 2))
  document.getElementById('zoom-out').addEventListener('click', () => zoomTo(zoom / 2))
  document.getElementById('zoom-fit').addEventListener('click', () => zoomTo(1))
  const culpritButton = document.getElementById('zoom-culprit')
  if (culpritButton) culpritButton.addEventListener('click', showCulprit)
  window.addEventListener('resize', () => zoomTo(zoom))
  render()
  showCulprit()
})()
`
