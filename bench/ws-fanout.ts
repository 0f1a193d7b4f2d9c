/**
 * `bun run bench:ws`: WebSocket fan-out on a real PostgreSQL.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/ws-fanout.ts \
 *     [--updates=100] [--idle=10000]
 *
 * Creates (and at the end drops) its own database, `taskapi_bench_ws`, starts the server as its
 * own process, subscribes 1, 100 and 1,000 sockets to one project and, for UPDATES task updates
 * made one after another, measures the time from the PATCH's HTTP response to the event's
 * arrival at every socket (p50/p99 over all arrivals, and p99 of the slowest socket per
 * update). Then it opens idle sockets and reads the server's RSS at 1,000 and IDLE sockets.
 * The sockets live in this process: their own event loop is part of what is measured.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { appBenchEnv, arg, benchDatabase, freePort, healthy, register } from './lib'

const UPDATES = arg('updates', 100)
const IDLE = arg('idle', 10_000)
const DB_NAME = 'taskapi_bench_ws'

const benchDb = await benchDatabase(DB_NAME, 'bench:ws')

const port = freePort()
const server = Bun.spawn(['bun', join(import.meta.dir, '..', 'src', 'index.ts')], {
  env: {
    ...process.env,
    ...appBenchEnv(port, benchDb.url, { WS_MAX_SOCKETS_PER_USER: String(IDLE + 2_000) }),
  },
  stdout: 'inherit',
  stderr: 'inherit',
})
const base = `http://127.0.0.1:${port}`
const sockets: WebSocket[] = []

try {
  await healthy(base)
  const { token } = await register(base, 'bench')
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const project = (await (
    await fetch(`${base}/api/v1/projects`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ name: 'Fan-out' }),
    })
  ).json()) as { id: string }
  const task = (await (
    await fetch(`${base}/api/v1/tasks`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ title: 'Fan-out', project_id: project.id }),
    })
  ).json()) as { id: string }
  console.log(`server pid ${server.pid}, RSS before any socket: ${rssMb()} MB`)

  // Each socket records when the current marker (a unique task title) reaches it.
  let marker = ''
  let arrivals: number[] = []
  const subscribe = async (count: number) => {
    for (let i = 0; i < count; i += 200)
      await Promise.all(
        Array.from({ length: Math.min(200, count - i) }, () => openSocket(token, project.id)),
      )
  }
  async function openSocket(bearer: string, projectId: string) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?access_token=${bearer}`)
    sockets.push(ws)
    await new Promise<void>((resolve, reject) => {
      ws.onmessage = (message) => {
        const text = String(message.data)
        if (text.startsWith('{"type":"welcome"'))
          ws.send(JSON.stringify({ type: 'subscribe', topic: `project:${projectId}` }))
        else if (text.startsWith('{"type":"subscribed"')) {
          ws.onmessage = (live) => {
            if (marker && String(live.data).includes(marker)) arrivals.push(performance.now())
          }
          resolve()
        }
      }
      ws.onerror = () => reject(new Error('socket failed'))
    })
  }

  console.log('\nsubscribers  updates   p50 ms   p99 ms  slowest-socket p99 ms')
  let subscribed = 0
  for (const target of [1, 100, 1_000]) {
    await subscribe(target - subscribed)
    subscribed = target
    const all: number[] = []
    const slowest: number[] = []
    for (let u = 0; u < UPDATES; u++) {
      marker = `bench-${target}-${u}-${crypto.randomUUID().slice(0, 8)}`
      arrivals = []
      const res = await fetch(`${base}/api/v1/tasks/${task.id}`, {
        method: 'PATCH',
        headers: auth,
        body: JSON.stringify({ title: marker }),
      })
      await res.arrayBuffer()
      const answered = performance.now()
      const until = answered + 5_000
      while (arrivals.length < target && performance.now() < until) await Bun.sleep(0)
      if (arrivals.length < target) throw new Error(`only ${arrivals.length}/${target} arrived`)
      // An event can beat the HTTP response to the client: that counts as 0.
      const latencies = arrivals.map((t) => Math.max(0, t - answered))
      all.push(...latencies)
      slowest.push(Math.max(...latencies))
    }
    console.log(
      `${String(target).padStart(11)}  ${String(UPDATES).padStart(7)}  ${pct(all, 0.5).padStart(7)}  ${pct(all, 0.99).padStart(7)}  ${pct(slowest, 0.99).padStart(21)}`,
    )
  }

  console.log(`\nRSS with ${subscribed} subscribed sockets: ${rssMb()} MB`)
  for (const target of [1_000, IDLE]) {
    if (target > subscribed) {
      await subscribe(target - subscribed)
      subscribed = target
    }
    await Bun.sleep(2_000)
    console.log(`RSS with ${subscribed} open idle sockets (each subscribed): ${rssMb()} MB`)
  }
} finally {
  for (const ws of sockets) ws.close()
  server.kill('SIGTERM')
  await server.exited
  await benchDb.drop()
}

function pct(values: number[], q: number) {
  const sorted = [...values].sort((a, b) => a - b)
  return (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(2)
}

function rssMb() {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return (kb / 1024).toFixed(0)
}
