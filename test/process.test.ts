import { afterAll, describe, expect, it } from 'bun:test'
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'

// These tests run the real entry point (`bun src/index.ts`) as operators do, on the embedded database.
const entry = join(import.meta.dir, '..', 'src', 'index.ts')
const running = new Set<Subprocess>()
const folders: string[] = []

afterAll(async () => {
  for (const proc of running) proc.kill('SIGKILL')
  for (const folder of folders) await rm(folder, { recursive: true, force: true })
}, 30_000)

async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'taskapi-proc-'))
  folders.push(dir)
  return dir
}

function spawnServer(env: Record<string, string>) {
  const proc = Bun.spawn(['bun', entry], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      // Servers run side by side (and next to other test runs): no Prometheus listener.
      METRICS_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      PASSWORD_HASH_CONCURRENCY: '1',
      ...env,
    },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  running.add(proc)
  return proc
}

/**
 * Resolves with the URL of the "listening" log line. stdout keeps being drained afterwards:
 * a closed pipe would kill the server on its next log line.
 */
async function listeningUrl(proc: Subprocess<'ignore', 'pipe', 'pipe'>) {
  const decoder = new TextDecoder()
  let seen = ''
  let found: ((url: string) => void) | undefined
  const url = new Promise<string>((resolve) => {
    found = resolve
  })
  const drain = (async () => {
    for await (const chunk of proc.stdout) {
      seen += decoder.decode(chunk)
      const match = /"msg":"listening","url":"http:\/\/[^:]+:(\d+)"/.exec(seen)
      if (match) found?.(`http://127.0.0.1:${match[1]}`)
    }
  })()
  return Promise.race([
    url,
    drain.then(async () => {
      throw new Error(
        `server exited before listening: ${seen} ${await new Response(proc.stderr).text()}`,
      )
    }),
  ])
}

const register = (url: string, n: number) =>
  fetch(`${url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `p${n}@example.com`,
      username: `proc_${n}`,
      password: 'password123',
    }),
  })

describe('the server process', () => {
  it('exits 1 naming the bad setting when the configuration is invalid', async () => {
    const proc = spawnServer({ PORT: 'eighty', DATA_DIR: await tempDir() })
    expect(await proc.exited).toBe(1)
    expect(await new Response(proc.stderr).text()).toContain('PORT')
  }, 30_000)

  it('exits 1 when its port is taken, and leaves its data folder unlocked', async () => {
    const first = spawnServer({ DATA_DIR: join(await tempDir(), 'data') })
    const port = new URL(await listeningUrl(first)).port
    const dataDir = join(await tempDir(), 'data')
    const second = spawnServer({ DATA_DIR: dataDir, PORT: port })
    expect(await second.exited).toBe(1)
    const log = await new Response(second.stderr).text()
    expect(log).toContain('"msg":"startup failed"')
    expect(log).toContain('EADDRINUSE')
    expect(await Bun.file(join(dataDir, 'taskapi.lock')).exists()).toBe(false)
    // The first server still answers every request alone.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
    first.kill('SIGTERM')
    expect(await first.exited).toBe(0)
  }, 120_000)

  it('exits 1 when METRICS_PORT is taken; serves /metrics on it otherwise', async () => {
    const blocker = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() })
    try {
      const dataDir = join(await tempDir(), 'data')
      const refused = spawnServer({ DATA_DIR: dataDir, METRICS_PORT: String(blocker.port) })
      expect(await refused.exited).toBe(1)
      expect(await new Response(refused.stderr).text()).toContain('EADDRINUSE')
      expect(await Bun.file(join(dataDir, 'taskapi.lock')).exists()).toBe(false)
    } finally {
      blocker.stop(true)
    }
    const probe = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response() })
    const metricsPort = probe.port
    probe.stop(true)
    const proc = spawnServer({
      DATA_DIR: join(await tempDir(), 'data'),
      METRICS_PORT: String(metricsPort),
    })
    const base = await listeningUrl(proc)
    expect((await fetch(`${base}/health`)).status).toBe(200)
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    expect(metrics.status).toBe(200)
    const text = await metrics.text()
    expect(text).toContain('http_request_duration_seconds_bucket{')
    expect(text).toContain('route="/health"')
    // The API port does not serve the metrics.
    expect((await fetch(`${base}/metrics`)).status).toBe(404)
    proc.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
  }, 120_000)

  it('keeps serving when the reader of its log goes away', async () => {
    const proc = spawnServer({ DATA_DIR: join(await tempDir(), 'data') })
    const reader = proc.stdout.getReader()
    let seen = ''
    let port: string | undefined
    while (port === undefined) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`server exited before listening: ${seen}`)
      seen += new TextDecoder().decode(value)
      port = /"msg":"listening","url":"http:\/\/[^:]+:(\d+)"/.exec(seen)?.[1]
    }
    // Closing our end of the pipe: every later log line meets EPIPE.
    await reader.cancel()
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
      await Bun.sleep(50)
    }
    proc.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
  }, 120_000)

  it('runs on the embedded database in DATA_DIR, locks it, drains on SIGTERM and keeps data', async () => {
    const dataDir = join(await tempDir(), 'data')
    const first = spawnServer({ DATA_DIR: dataDir })
    const url = await listeningUrl(first)
    expect((await fetch(`${url}/health`)).status).toBe(200)
    expect((await stat(join(dataDir, 'pg'))).isDirectory()).toBe(true)
    // Private: the database files and the generated secret are out of other users' reach.
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dataDir, 'pg'))).mode & 0o777).toBe(0o700)
    expect((await stat(join(dataDir, 'pg', 'base'))).mode & 0o077).toBe(0)

    const second = spawnServer({ DATA_DIR: dataDir })
    expect(await second.exited).toBe(1)
    expect(await new Response(second.stderr).text()).toContain('in use by process')

    // Requests already in flight when SIGTERM arrives still get their answer.
    // One hash at a time makes the four registrations take several hundred ms in all; the
    // signal comes once they have surely arrived.
    const inFlight = [1, 2, 3, 4].map((n) => register(url, n))
    await Bun.sleep(120)
    first.kill('SIGTERM')
    const statuses = await Promise.all(inFlight.map((r) => r.then((res) => res.status)))
    expect(statuses).toEqual([201, 201, 201, 201])
    expect(await first.exited).toBe(0)

    // A folder an earlier version left readable is made private again at start.
    await chmod(join(dataDir, 'pg'), 0o755)
    const again = spawnServer({ DATA_DIR: dataDir })
    const url2 = await listeningUrl(again)
    expect((await stat(join(dataDir, 'pg'))).mode & 0o777).toBe(0o700)
    const login = await fetch(`${url2}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'p2@example.com', password: 'password123' }),
    })
    expect(login.status).toBe(200)
    again.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  }, 120_000)
})
