/**
 * `bun run bench:auth`: load on the auth surface of a real server process, reported as ratios against
 * GET /health measured in the same run (this machine is shared and noisy).
 *
 *   bun bench/auth.ts [--seconds=5] [--connections=16]
 *   DATABASE_URL=postgres://... bun bench/auth.ts     (a real PostgreSQL; default: embedded)
 *
 * The server runs as its own process (`bun src/index.ts`) on 127.0.0.1 with a fresh DATA_DIR;
 * every loop is bounded in time. Also checks that a wrong password and an unknown email take
 * about the same time (login must not reveal which emails exist).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { arg, listening, load as loadFor, rssMiB } from './lib'

const SECONDS = arg('seconds', 5)
const CONNECTIONS = arg('connections', 16)
const load = (name: string, request: () => Promise<Response>) =>
  loadFor(name, request, { seconds: SECONDS, connections: CONNECTIONS })

const dataDir = mkdtempSync(join(tmpdir(), 'taskapi-bench-'))
const server = Bun.spawn(['bun', join(import.meta.dir, '..', 'src', 'index.ts')], {
  env: {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    // The load comes from one user at one address: no per-instance rate limits.
    RATE_LIMIT_REQUESTS: '0',
    RATE_LIMIT_AUTH_REQUESTS: '0',
    JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
  },
  stdout: 'pipe',
  stderr: 'inherit',
})
const base = await listening(server.stdout)

try {
  const user = await json('POST', '/api/v1/auth/register', {
    email: 'bench@example.com',
    username: 'bench',
    password: 'bench password 1',
  })
  const token = user.access_token as string
  const rows = [
    await load('GET /health (baseline)', () => fetch(`${base}/health`)),
    await load('GET /api/v1/users/me', () =>
      fetch(`${base}/api/v1/users/me`, { headers: { authorization: `Bearer ${token}` } }),
    ),
    await load('POST /api/v1/auth/login', () =>
      post('/api/v1/auth/login', { email: 'bench@example.com', password: 'bench password 1' }),
    ),
  ]
  const baseline = rows[0]?.rps ?? 1
  console.log(
    `\n${CONNECTIONS} connections, ${SECONDS} s each, database: ${process.env.DATABASE_URL ? 'postgres' : 'embedded'}`,
  )
  console.log('scenario                      req/s   ratio   p50 ms   p99 ms   errors')
  for (const r of rows)
    console.log(
      `${r.name.padEnd(28)} ${r.rps.toFixed(0).padStart(6)}  ${(r.rps / baseline).toFixed(3).padStart(6)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${String(r.errors).padStart(7)}`,
    )
  await loginTiming()
  console.log(`server RSS after the run: ${rssMiB(server.pid)} MiB`)
} finally {
  server.kill('SIGTERM')
  await server.exited
  rmSync(dataDir, { recursive: true, force: true })
}

/** Interleaves wrong-password and unknown-email logins one at a time; compares the medians. */
async function loginTiming() {
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 70; i++) {
    for (const [email, into] of [
      ['bench@example.com', known],
      [`nobody${i}@example.com`, unknown],
    ] as const) {
      const start = performance.now()
      const res = await post('/api/v1/auth/login', { email, password: 'wrong password' })
      await res.arrayBuffer()
      // The first ten of each are warm-up.
      if (i >= 10) into.push(performance.now() - start)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
  const k = median(known)
  const u = median(unknown)
  console.log(
    `login timing, 60 each: wrong password median ${k.toFixed(1)} ms, unknown email ${u.toFixed(1)} ms, ratio ${(u / k).toFixed(3)}`,
  )
}

function post(path: string, body: unknown) {
  return fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

async function json(method: string, path: string, body: unknown) {
  const res = await post(path, body)
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return (await res.json()) as Record<string, unknown>
}
