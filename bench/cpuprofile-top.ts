/**
 * Sums the self time of a `.cpuprofile` (from `bun --cpu-prof`) by function and by package or
 * file, and prints the top entries of each.
 *
 *   bun bench/cpuprofile-top.ts <file.cpuprofile> [--top=10]
 */
import { readFileSync } from 'node:fs'

type Node = {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const file = process.argv[2]
if (!file) {
  console.error('usage: bun bench/cpuprofile-top.ts <file.cpuprofile> [--top=10]')
  process.exit(1)
}
const top = Number(process.argv.find((a) => a.startsWith('--top='))?.split('=')[1] ?? 10)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  self.set(id, (self.get(id) ?? 0) + dt)
  total += dt
})

/** node_modules/<package> (scoped too), our own src/ file, or the runtime's. */
const ownerOf = (url: string) => {
  if (!url) return '(runtime)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1] as string
  const src = /\/((?:src|bench)\/.+)$/.exec(url)
  return src ? (src[1] as string) : url.replace(/^.*\//, '')
}

const byFunction = new Map<string, number>()
const byOwner = new Map<string, number>()
for (const [id, time] of self) {
  const node = byId.get(id)
  if (!node) continue
  const { functionName, url, lineNumber } = node.callFrame
  const owner = ownerOf(url)
  const name = `${functionName || '(anonymous)'} ${owner}${url ? `:${lineNumber + 1}` : ''}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + time)
  byOwner.set(owner, (byOwner.get(owner) ?? 0) + time)
}

// Runtime functions (no file) charged to the nearest caller that has one.
const parent = new Map<number, number>()
for (const node of profile.nodes)
  for (const child of node.children ?? []) parent.set(child, node.id)
const byCaller = new Map<string, number>()
for (const [id, time] of self) {
  let node = byId.get(id)
  const leaf = node?.callFrame.functionName || '(anonymous)'
  while (node && !node.callFrame.url && parent.has(node.id))
    node = byId.get(parent.get(node.id) as number)
  if (!node || byId.get(id)?.callFrame.url) continue
  const { functionName, url, lineNumber } = node.callFrame
  const name = `${leaf} <- ${functionName || '(anonymous)'} ${url ? `${ownerOf(url)}:${lineNumber + 1}` : '(root)'}`
  byCaller.set(name, (byCaller.get(name) ?? 0) + time)
}

const print = (title: string, table: Map<string, number>) => {
  console.log(`\n${title}`)
  for (const [name, time] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((100 * time) / total).toFixed(1).padStart(5)}%  ${(time / 1000).toFixed(0).padStart(6)} ms  ${name}`,
    )
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
print(`top ${top} self time by function`, byFunction)
print(`top ${top} self time by package or file`, byOwner)
print(`top ${top} runtime self time by nearest caller with a file`, byCaller)
