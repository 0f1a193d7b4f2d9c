import { afterAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { JWT_SECRET, registerAt, scratchDatabase } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// The real entry point (`bun src/index.ts`), on the embedded database, as operators run it.
const entry = join(import.meta.dir, '..', 'src', 'index.ts')
const running = new Set<Subprocess>()
const folders: string[] = []
afterAll(async () => {
  for (const proc of running) proc.kill('SIGKILL')
  for (const folder of folders) await rm(folder, { recursive: true, force: true })
}, 30_000)

type Line = { level: string; msg: string } & Record<string, unknown>

/** Starts the server; resolves with its URL once it listens, and keeps collecting its log lines. */
async function start(env: Record<string, string>, dataDir?: string) {
  const dir = await mkdtemp(join(tmpdir(), 'taskapi-review-ops-'))
  folders.push(dir)
  const proc = Bun.spawn(['bun', entry], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATA_DIR: dataDir ?? join(dir, 'data'),
      HOST: '127.0.0.1',
      PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      PASSWORD_HASH_CONCURRENCY: '1',
      // Set, so the only warning at startup (a generated secret) does not mask later ones.
      JWT_SECRET,
      ...env,
    },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  running.add(proc)
  // Warnings and errors go to stderr: both streams are read, or a test of "nothing failed"
  // could not fail.
  const lines: Line[] = []
  let listening: ((url: string) => void) | undefined
  const url = new Promise<string>((resolve) => {
    listening = resolve
  })
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = ''
    for await (const chunk of stream) {
      rest += new TextDecoder().decode(chunk)
      const parts = rest.split('\n')
      rest = parts.pop() ?? ''
      for (const part of parts) {
        let line: Line
        try {
          line = JSON.parse(part) as Line
        } catch {
          line = { level: 'stderr', msg: part }
        }
        lines.push(line)
        if (line.msg === 'listening') listening?.(String(line.url))
      }
    }
  }
  const drained = Promise.all([collect(proc.stdout), collect(proc.stderr)])
  const found = await Promise.race([url, drained.then(() => undefined)])
  if (!found) throw new Error(`server exited before listening: ${JSON.stringify(lines)}`)
  return { proc, url: found, lines, drained, dataDir: dataDir ?? join(dir, 'data') }
}

const register = (url: string, n: number) => registerAt(url, `shutdown_${n}`)

describe('SIGTERM', () => {
  it('closes WebSockets with 1001, lets requests in flight finish, and exits 0 with nothing failing', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '5000' })
    const first = (await (await register(server.url, 0)).json()) as { access_token: string }
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, {
      headers: { authorization: `Bearer ${first.access_token}` },
    } as unknown as string[])
    const welcomed = new Promise((resolve) => {
      ws.onmessage = resolve
    })
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      ws.onclose = (event) => resolve({ code: event.code, reason: event.reason })
    })
    await welcomed
    // A few hundred ms of hashing, one at a time: the signal arrives while they run.
    const inFlight = [1, 2, 3].map((n) => register(server.url, n))
    await Bun.sleep(100)
    const signalled = Date.now()
    server.proc.kill('SIGTERM')
    expect((await Promise.all(inFlight)).map((res) => res.status)).toEqual([201, 201, 201])
    expect(await closed).toEqual({ code: 1001, reason: 'server shutting down' })
    expect(await server.proc.exited).toBe(0)
    expect(Date.now() - signalled).toBeLessThan(5_000)
    await server.drained
    expect(server.lines.at(-1)).toMatchObject({ msg: 'stopped', forced: false })
    // Nothing after the signal is a warning or an error (a timer still polling the closed pool).
    expect(server.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([])
  })
})

describe('SIGTERM with the event pruner due', () => {
  it('stops the pruner before the database closes: no prune fails on the closed pool', async () => {
    // On PostgreSQL the pool closes over the network, with timers running meanwhile.
    const scratch = process.env.DATABASE_URL
      ? await scratchDatabase(process.env.DATABASE_URL)
      : undefined
    try {
      // A prune every 10 ms is due while the database closes, unless shutdown stopped it first.
      const server = await start({
        EVENTS_PRUNE_INTERVAL_MS: '10',
        ...(scratch ? { DATABASE_URL: scratch.url } : {}),
      })
      expect((await register(server.url, 20)).status).toBe(201)
      server.proc.kill('SIGTERM')
      expect(await server.proc.exited).toBe(0)
      await server.drained
      const problems = server.lines.filter((l) => l.level !== 'info' && l.level !== 'debug')
      expect(problems).toEqual([])
      expect(server.lines.at(-1)).toMatchObject({ msg: 'stopped', forced: false })
    } finally {
      await scratch?.drop()
    }
  })
})

describe('SIGTERM with a webhook delivery in flight', () => {
  it('lets the attempt finish and records it before exiting', async () => {
    let calls = 0
    const receiver = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(request) {
        calls += 1
        await request.text()
        // Answers well within WEBHOOK_TIMEOUT_MS and SHUTDOWN_TIMEOUT_MS, after the signal.
        await Bun.sleep(1_500)
        return new Response(null, { status: 204 })
      },
    })
    const env = {
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_POLL_MS: '25',
      SHUTDOWN_TIMEOUT_MS: '5000',
    }
    try {
      const server = await start(env)
      const owner = (await (await register(server.url, 10)).json()) as { access_token: string }
      const auth = {
        authorization: `Bearer ${owner.access_token}`,
        'content-type': 'application/json',
      }
      const post = (path: string, body: unknown) =>
        fetch(`${server.url}/api/v1${path}`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify(body),
        })
      const project = (await (await post('/projects', { name: 'Hooked' })).json()) as { id: string }
      const hook = (await (
        await post(`/projects/${project.id}/webhooks`, {
          url: `http://127.0.0.1:${receiver.port}/`,
          events: ['task.created'],
        })
      ).json()) as { id: string }
      expect((await post('/tasks', { project_id: project.id, title: 'Sent' })).status).toBe(201)
      for (let i = 0; calls === 0 && i < 500; i += 1) await Bun.sleep(10)
      expect(calls).toBe(1)
      server.proc.kill('SIGTERM')
      expect(await server.proc.exited).toBe(0)
      await server.drained
      expect(server.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([])

      // Started again on the same data: the delivery is recorded as the success it was.
      const again = await start({ ...env, WEBHOOK_POLL_MS: '60000' }, server.dataDir)
      const login = (await (
        await fetch(`${again.url}/api/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'shutdown_10@example.com', password: 'password123' }),
        })
      ).json()) as { access_token: string }
      const log = (await (
        await fetch(`${again.url}/api/v1/projects/${project.id}/webhooks/${hook.id}/deliveries`, {
          headers: { authorization: `Bearer ${login.access_token}` },
        })
      ).json()) as unknown[]
      again.proc.kill('SIGTERM')
      expect(await again.proc.exited).toBe(0)
      expect(log).toMatchObject([{ status: 'succeeded', response_status: 204 }])
      expect(calls).toBe(1)
    } finally {
      receiver.stop(true)
    }
  })
})
