/**
 * The deeply nested JSON attack (issue 5): the time one 50,000-level body takes to be answered,
 * and how long GET /health takes while 8 of them arrive at once, against a real server process.
 *
 *   bun bench/nested-json.ts [--root=<checkout>] [--mode=production|development]
 *
 * `--root` runs another checkout's src/index.ts (an older commit, for a before/after).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listening } from './lib'

const option = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback
const root = option('root', join(import.meta.dir, '..'))
const mode = option('mode', 'production')

const dataDir = mkdtempSync(join(tmpdir(), 'taskapi-nested-'))
const server = Bun.spawn(['bun', join(root, 'src', 'index.ts')], {
  env: {
    ...process.env,
    NODE_ENV: mode,
    HOST: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
  },
  stdout: 'pipe',
  stderr: 'pipe',
})

const levels = 50_000
const body = `{"email": ${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}, "password": "x"}`
const attack = async () => {
  const start = performance.now()
  const res = await fetch(`${base()}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  await res.arrayBuffer()
  return { ms: performance.now() - start, status: res.status }
}

let url = ''
const base = () => url
try {
  url = await listening(server.stdout)
  const singles = []
  for (let i = 0; i < 5; i++) singles.push(await attack())
  const health: number[] = []
  const attacks = Promise.all(Array.from({ length: 8 }, attack))
  let done = false
  void attacks.then(() => {
    done = true
  })
  // Probe /health every 20 ms until the 8 attacks are answered (at most 120 s).
  const until = performance.now() + 120_000
  while (!done && performance.now() < until) {
    const start = performance.now()
    await (await fetch(`${base()}/health`)).arrayBuffer()
    health.push(performance.now() - start)
    await Bun.sleep(20)
  }
  const parallel = await attacks
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
  console.log(`root ${root}, NODE_ENV=${mode}, body ${(body.length / 1024).toFixed(0)} KiB`)
  console.log(
    `one body: median ${median(singles.map((s) => s.ms)).toFixed(1)} ms over 5, statuses ${[...new Set(singles.map((s) => s.status))].join(',')}`,
  )
  console.log(
    `8 in parallel: all answered after ${Math.max(...parallel.map((p) => p.ms)).toFixed(0)} ms (statuses ${[...new Set(parallel.map((p) => p.status))].join(',')}); /health during them: ${health.length} probes, median ${median(health).toFixed(1)} ms, max ${Math.max(0, ...health).toFixed(1)} ms`,
  )
} finally {
  server.kill('SIGTERM')
  await server.exited
  rmSync(dataDir, { recursive: true, force: true })
}
