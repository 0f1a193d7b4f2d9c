/**
 * What durable commits cost on the embedded database, and whether a crash loses any.
 *
 *   bun bench/commits.ts                      # fsync on (the default) and off, side by side
 *   bun bench/commits.ts --kill=10            # SIGKILL loop: acknowledged tasks survive restarts
 *   bash bench/fsync-per-commit.sh            # fsync() calls per commit, traced with strace
 *
 * Each mode starts the real server (`bun src/index.ts`) on a new DATA_DIR, signs up one user with
 * one project, then creates tasks (one transaction each, with its activity row): `--count`
 * one at a time, then as many as `--connections`
 * concurrent clients manage in `--seconds` (tasks per second and mean latency).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const count = Number(arg('count', '200'))
const seconds = Number(arg('seconds', '5'))
const connections = Number(arg('connections', '4'))
const killTrials = Number(arg('kill', '0'))
const entry = join(import.meta.dir, '..', 'src', 'index.ts')

type Server = { proc: Subprocess<'ignore', 'pipe', 'pipe'>; url: string }

async function start(dataDir: string, fsync: boolean): Promise<Server> {
  const proc = Bun.spawn(['bun', entry], {
    env: {
      ...process.env,
      DATABASE_URL: '',
      DATA_DIR: dataDir,
      EMBEDDED_FSYNC: String(fsync),
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      PASSWORD_HASH_CONCURRENCY: '1',
    },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const decoder = new TextDecoder()
  let seen = ''
  const reader = proc.stdout.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`server exited: ${seen} ${await new Response(proc.stderr).text()}`)
    seen += decoder.decode(value)
    const port = /"msg":"listening","url":"http:\/\/[^:]+:(\d+)"/.exec(seen)?.[1]
    if (port) {
      // Keep draining: a full pipe would block the server's log writes.
      void (async () => {
        while (!(await reader.read()).done) {}
      })()
      return { proc, url: `http://127.0.0.1:${port}` }
    }
  }
}

async function post(url: string, path: string, body: unknown, token?: string) {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  })
  return {
    status: res.status,
    body: (await res.json().catch(() => ({}))) as Record<string, unknown>,
  }
}

async function signUp(url: string) {
  const user = await post(url, '/api/v1/auth/register', {
    email: 'bench@example.com',
    username: 'bench',
    password: 'correct horse battery',
  })
  const token = user.body.access_token as string
  const project = await post(url, '/api/v1/projects', { name: 'Bench' }, token)
  return { token, projectId: project.body.id as string }
}

const createTask = (url: string, token: string, projectId: string, n: number) =>
  post(url, '/api/v1/tasks', { project_id: projectId, title: `task ${n}` }, token)

async function stop(server: Server) {
  server.proc.kill('SIGTERM')
  await server.proc.exited
}

async function measure(fsync: boolean) {
  const dataDir = await mkdtemp(join(tmpdir(), 'taskapi-commits-'))
  try {
    const server = await start(join(dataDir, 'data'), fsync)
    const { token, projectId } = await signUp(server.url)
    const t0 = performance.now()
    for (let n = 0; n < count; n++) {
      const res = await createTask(server.url, token, projectId, n)
      if (res.status !== 201) throw new Error(`create answered ${res.status}`)
    }
    const sequentialMs = (performance.now() - t0) / count

    let done = 0
    const until = performance.now() + seconds * 1000
    const latencies: number[] = []
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < until) {
          const s = performance.now()
          const res = await createTask(server.url, token, projectId, done)
          if (res.status !== 201) throw new Error(`create answered ${res.status}`)
          latencies.push(performance.now() - s)
          done += 1
        }
      }),
    )
    await stop(server)
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length
    console.log(
      JSON.stringify({
        embedded_fsync: fsync,
        sequential_ms_per_task: Number(sequentialMs.toFixed(2)),
        tasks_per_second: Math.round(done / seconds),
        connections,
        mean_latency_ms: Number(mean.toFixed(2)),
      }),
    )
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** Start, create tasks from several clients, SIGKILL at a random moment, restart, check. */
async function killLoop(trials: number) {
  const dataDir = await mkdtemp(join(tmpdir(), 'taskapi-kill-'))
  const acknowledged = new Set<string>()
  let lost = 0
  try {
    let server = await start(join(dataDir, 'data'), true)
    const { projectId } = await signUp(server.url)
    for (let trial = 1; trial <= trials; trial++) {
      const login = await post(server.url, '/api/v1/auth/login', {
        email: 'bench@example.com',
        password: 'correct horse battery',
      })
      const token = login.body.access_token as string
      let running = true
      const clients = Array.from({ length: connections }, async (_, c) => {
        let n = 0
        while (running) {
          const res = await createTask(server.url, token, projectId, c * 1e6 + n++).catch(
            () => undefined,
          )
          if (res?.status === 201) acknowledged.add(res.body.id as string)
          else if (res) break
          else break
        }
      })
      await Bun.sleep(200 + Math.random() * 800)
      server.proc.kill('SIGKILL')
      running = false
      await server.proc.exited
      await Promise.all(clients)
      server = await start(join(dataDir, 'data'), true)
      const again = await post(server.url, '/api/v1/auth/login', {
        email: 'bench@example.com',
        password: 'correct horse battery',
      })
      const fresh = again.body.access_token as string
      let missing = 0
      for (const id of acknowledged) {
        const res = await fetch(`${server.url}/api/v1/tasks/${id}`, {
          headers: { authorization: `Bearer ${fresh}` },
        })
        if (res.status !== 200) missing += 1
      }
      lost += missing
      console.log(JSON.stringify({ trial, acknowledged: acknowledged.size, missing }))
    }
    await stop(server)
    console.log(JSON.stringify({ trials, acknowledged: acknowledged.size, lost }))
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
  if (lost > 0) process.exit(1)
}

if (killTrials > 0) await killLoop(killTrials)
else for (const fsync of [true, false]) await measure(fsync)
