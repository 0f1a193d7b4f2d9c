import { afterAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { registerAt } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

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

/** Paths under `dir` that a group or other user could read or write. */
async function openToOthers(dir: string): Promise<string[]> {
  const open: string[] = []
  for (const name of await readdir(dir, { recursive: true })) {
    const info = await stat(join(dir, name)).catch(() => undefined)
    if (info && !info.isSocket() && info.mode & 0o077)
      open.push(`${name} ${(info.mode & 0o777).toString(8)}`)
  }
  return open
}

const register = (url: string, n: number) => registerAt(url, `proc_${n}`)

describe('the server process', () => {
  it('exits 1 naming the bad setting when the configuration is invalid', async () => {
    const proc = spawnServer({ PORT: 'eighty', DATA_DIR: await tempDir() })
    expect(await proc.exited).toBe(1)
    expect(await new Response(proc.stderr).text()).toContain('PORT')
  }, 30_000)

  it('refuses numbers written any other way than plain digits, naming each setting', async () => {
    const proc = spawnServer({
      PORT: '1e3',
      ACCESS_TOKEN_TTL: '1e6',
      LOG_LEVEL: 'INFO',
      JWT_SECRET: 'short',
      DATA_DIR: await tempDir(),
    })
    expect(await proc.exited).toBe(1)
    const line = JSON.parse((await new Response(proc.stderr).text()).trim())
    expect(line).toMatchObject({ level: 'error', time: expect.any(String), msg: 'startup failed' })
    // Every problem at once, the secret's too.
    expect(line.problems).toEqual([
      'PORT: must be a whole number from 0 to 65535',
      'ACCESS_TOKEN_TTL: must be a whole number from 1 to 31536000',
      'LOG_LEVEL: must be one of debug, info, warn, error, silent',
      'JWT_SECRET: must be at least 32 bytes',
    ])
  }, 30_000)

  it('names HOST when it cannot listen there, and DATABASE_URL when it is refused', async () => {
    const secret = { JWT_SECRET: 'x'.repeat(40), DATA_DIR: await tempDir() }
    const host = spawnServer({
      ...secret,
      HOST: 'not-a-host',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
    })
    expect(await host.exited).toBe(1)
    expect(await new Response(host.stderr).text()).toContain('"HOST: cannot listen on')
    const refused = spawnServer({
      ...secret,
      DATABASE_URL: 'postgres://u:pw-not-logged@127.0.0.1:1/x',
    })
    expect(await refused.exited).toBe(1)
    const log = await new Response(refused.stderr).text()
    expect(log).toContain('DATABASE_URL: cannot use 127.0.0.1:1/x')
    expect(log).toContain('ECONNREFUSED')
    expect(log).not.toContain('pw-not-logged')
  }, 30_000)

  it('stops cleanly on SIGTERM during startup, before listening', async () => {
    const dataDir = join(await tempDir(), 'data')
    const proc = spawnServer({ DATA_DIR: dataDir })
    const stdout = new Response(proc.stdout).text()
    // Half a second in: the embedded database is still being created.
    await Bun.sleep(500)
    proc.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
    const log = await stdout
    expect(log).toContain('"msg":"stopped","signal":"SIGTERM","during":"startup"')
    expect(log).not.toContain('"msg":"listening"')
    expect(await Bun.file(join(dataDir, 'taskapi.lock')).exists()).toBe(false)
  }, 120_000)

  it('exits 1 when its port is taken, and leaves its data folder unlocked', async () => {
    const first = spawnServer({ DATA_DIR: join(await tempDir(), 'data') })
    const port = new URL(await listeningUrl(first)).port
    const dataDir = join(await tempDir(), 'data')
    const second = spawnServer({ DATA_DIR: dataDir, PORT: port })
    expect(await second.exited).toBe(1)
    const log = await new Response(second.stderr).text()
    expect(log).toContain('"msg":"startup failed"')
    expect(log).toContain(`PORT: ${port} is already in use`)
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
    // A folder that existed open to everyone, holding the lock file of a crashed server whose PID
    // now belongs to an unrelated live process (this test runner, started at another time).
    await mkdir(dataDir, { mode: 0o777 })
    await chmod(dataDir, 0o777)
    await writeFile(join(dataDir, 'taskapi.lock'), `${process.pid} 1`)
    // No writable temporary directory (a read-only root filesystem in a container).
    const first = spawnServer({ DATA_DIR: dataDir, TMPDIR: join(dataDir, 'no-such-tmp') })
    const url = await listeningUrl(first)
    expect((await fetch(`${url}/health`)).status).toBe(200)
    expect((await stat(join(dataDir, 'pg'))).isDirectory()).toBe(true)
    // Private: the database files and the generated secret are out of other users' reach.
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700)
    expect(await openToOthers(dataDir)).toEqual([])
    // The socket lives in DATA_DIR; the lock names this server and when it started.
    expect((await stat(join(dataDir, '.s.PGSQL.5432'))).isSocket()).toBe(true)
    const lock = (await readFile(join(dataDir, 'taskapi.lock'), 'utf8')).split(' ')
    expect(lock[0]).toBe(String(first.pid))
    expect(lock[1]).toMatch(/^[0-9]+$/)

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

    expect(await stat(join(dataDir, '.s.PGSQL.5432')).catch(() => 'gone')).toBe('gone')

    // Folders and files an earlier version left open are made private again at start.
    await chmod(join(dataDir, 'pg'), 0o755)
    await chmod(join(dataDir, 'pg', 'PG_VERSION'), 0o666)
    const again = spawnServer({ DATA_DIR: dataDir })
    const url2 = await listeningUrl(again)
    expect(await openToOthers(dataDir)).toEqual([])
    const login = await fetch(`${url2}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'proc_2@example.com', password: 'password123' }),
    })
    expect(login.status).toBe(200)
    again.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  }, 120_000)
})
