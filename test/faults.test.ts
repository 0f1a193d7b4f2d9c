import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { connect } from 'node:net'
import type { Socket, TCPSocketListener } from 'bun'
import postgres from 'postgres'
import { type Database, openDatabase } from '../src/db'
import { createLogger } from '../src/logger'
import { createProject } from './factories'
import { registerUser, startServer, type TestServer, testConfig } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

/** One direction of a proxied connection: writes what the socket did not take on drain. */
type End = { socket?: Socket<End>; queue: Uint8Array[]; peer?: End; closed: boolean }

const send = (end: End | undefined, chunk: Uint8Array) => {
  if (!end || end.closed) return
  if (!end.socket || end.queue.length > 0) {
    end.queue.push(new Uint8Array(chunk))
    return
  }
  const written = end.socket.write(chunk)
  if (written < chunk.byteLength) end.queue.push(new Uint8Array(chunk.subarray(written)))
}
const flush = (end: End) => {
  while (end.socket && end.queue.length > 0) {
    const chunk = end.queue[0] as Uint8Array
    const written = end.socket.write(chunk)
    if (written < chunk.byteLength) {
      end.queue[0] = chunk.subarray(written)
      return
    }
    end.queue.shift()
  }
}
const close = (end: End | undefined) => {
  if (!end || end.closed) return
  end.closed = true
  end.socket?.end()
  close(end.peer)
}

// The ErrorResponse PostgreSQL sends a client whose backend pg_terminate_backend ends.
const terminated = (() => {
  const fields = [
    'SFATAL',
    'VFATAL',
    'C57P01',
    'Mterminating connection due to administrator command',
  ]
  const body = Buffer.from(`${fields.join('\0')}\0\0`)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(body.byteLength + 4)
  return Buffer.concat([Buffer.from('E'), length, body])
})()

/**
 * A TCP proxy in front of the machine's PostgreSQL: `down()` drops every connection and stops
 * listening (the database "goes away" for this server only), `up()` listens again on the same port.
 * `hold()` accepts new connections but connects them upstream only at `release()`; `killOn(text)`
 * answers the next client message containing `text` as a terminated backend does, and closes.
 */
function tcpProxy(target: { hostname: string; port: number }) {
  const open = new Set<End>()
  let listener: TCPSocketListener<End> | undefined
  let port = 0
  let held: (() => void)[] | undefined
  let started: (() => void) | undefined
  const fresh = new WeakSet<End>()
  let kill: Buffer | undefined
  const up = () => {
    if (listener) return port
    listener = Bun.listen<End>({
      hostname: '127.0.0.1',
      port,
      socket: {
        open(client) {
          const near: End = { socket: client, queue: [], closed: false }
          const far: End = { queue: [], closed: false, peer: near }
          near.peer = far
          client.data = near
          open.add(near)
          fresh.add(near)
          const connect = () =>
            Bun.connect<End>({
              ...target,
              socket: {
                open(upstream) {
                  upstream.data = far
                  far.socket = upstream
                  flush(far)
                },
                data: (upstream, chunk) => send(upstream.data.peer, chunk),
                drain: (upstream) => flush(upstream.data),
                close: (upstream) => close(upstream.data),
                error: (upstream) => close(upstream.data),
              },
            }).catch(() => close(near))
          if (held) held.push(connect)
          else connect()
        },
        data(client, chunk) {
          if (fresh.delete(client.data)) {
            started?.()
            started = undefined
          }
          if (kill && Buffer.from(chunk).includes(kill)) {
            kill = undefined
            client.write(terminated)
            close(client.data)
            return
          }
          send(client.data.peer, chunk)
        },
        drain: (client) => flush(client.data),
        close(client) {
          open.delete(client.data)
          close(client.data)
        },
        error: (client) => close(client.data),
      },
    })
    port = listener.port
    return port
  }
  const down = () => {
    listener?.stop(true)
    listener = undefined
    for (const end of open) close(end)
    open.clear()
  }
  const hold = () => {
    held ??= []
  }
  const release = () => {
    const waiting = held ?? []
    held = undefined
    for (const connect of waiting) connect()
  }
  /** Resolves when the next new connection has sent its first message (the startup message). */
  const nextStartup = () =>
    new Promise<void>((resolve) => {
      started = resolve
    })
  const killOn = (text: string) => {
    kill = Buffer.from(text)
  }
  return { up, down, hold, release, nextStartup, killOn }
}

const pgUrl = process.env.DATABASE_URL

describe.skipIf(!pgUrl)('PostgreSQL goes away under light load', () => {
  const target = new URL(pgUrl ?? 'postgres://127.0.0.1:5432/postgres')
  const proxy = tcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) })
  let server: TestServer
  beforeAll(async () => {
    const port = proxy.up()
    const url = new URL(target)
    url.host = `127.0.0.1:${port}`
    server = await startServer({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: '4' })
  }, 60_000)
  afterAll(async () => {
    proxy.up()
    await server.close()
  }, 60_000)

  it('answers 503 quickly while it is gone, says unhealthy, recovers by itself, writes nothing by halves', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const results: { status: number; ms: number; title?: string; phase: string }[] = []
    let phase = 'before'
    let running = true
    let n = 0
    const worker = async () => {
      while (running) {
        n += 1
        const title = `fault task ${n}`
        const start = performance.now()
        const write = n % 2 === 0
        // The phase the request was sent in: one sent while recovering may answer after it.
        const sentIn = phase
        const res = write
          ? await server.request('POST', '/api/v1/tasks', {
              token: owner.access,
              body: { title, project_id: project.id },
            })
          : await server.request('GET', `/api/v1/projects/${project.id}`, { token: owner.access })
        results.push({
          status: res.status,
          ms: performance.now() - start,
          phase: sentIn,
          ...(write && res.status === 201 ? { title } : {}),
        })
        await Bun.sleep(20)
      }
    }
    const workers = [worker(), worker(), worker()]
    await Bun.sleep(1_000)

    phase = 'down'
    proxy.down()
    await Bun.sleep(300)
    const started = performance.now()
    const health = await server.request('GET', '/health')
    expect(health.status).toBe(503)
    expect(health.body.status).toBe('unhealthy')
    expect(performance.now() - started).toBeLessThan(3_000)
    await Bun.sleep(1_500)

    phase = 'recovering'
    proxy.up()
    const until = Date.now() + 20_000
    let healthy = false
    while (!healthy && Date.now() < until) {
      healthy = (await server.request('GET', '/health')).status === 200
      if (!healthy) await Bun.sleep(200)
    }
    expect(healthy).toBe(true)
    phase = 'after'
    await Bun.sleep(1_000)
    running = false
    await Promise.all(workers)

    const statuses = new Set(results.map((r) => r.status))
    expect(statuses.has(500)).toBe(false)
    for (const status of statuses) expect([200, 201, 503]).toContain(status)
    expect(results.filter((r) => r.phase === 'down').some((r) => r.status === 503)).toBe(true)
    // Most answers come at once or after one reconnect attempt (at most 1 s apart); a connection
    // caught mid-handshake waits its connect_timeout (5 s): the bound until a request deadline.
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(6_500)
    const quick = results.filter((r) => r.phase === 'down' && r.ms < 1_500)
    expect(quick.length).toBeGreaterThan(0)
    const after = results.filter((r) => r.phase === 'after')
    expect(after.length).toBeGreaterThan(5)
    expect(after.every((r) => r.status === 200 || r.status === 201)).toBe(true)

    // Every acknowledged task is stored, and every stored task has its activity row.
    const sql = server.db.sql
    const rows = await sql<{ title: string; logged: boolean }[]>`
      select t.title, exists (
        select 1 from activity_log a where a.entity_id = t.id and a.action = 'task.created'
      ) as logged
      from tasks t where t.project_id = ${project.id}
    `
    const stored = new Set(rows.map((r) => r.title))
    for (const r of results) if (r.title) expect(stored.has(r.title)).toBe(true)
    expect(rows.every((r) => r.logged)).toBe(true)
  }, 60_000)

  it('terminating every backend of the pool under load: 503s at worst, never a 500, then full service', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const statuses: number[] = []
    let slowest = 0
    let running = true
    const worker = async () => {
      for (let i = 0; running; i += 1) {
        const start = performance.now()
        const res =
          i % 2 === 0
            ? await server.request('POST', '/api/v1/tasks', {
                token: owner.access,
                body: { title: `terminated ${i}`, project_id: project.id },
              })
            : await server.request('GET', `/api/v1/projects/${project.id}/members`, {
                token: owner.access,
              })
        slowest = Math.max(slowest, performance.now() - start)
        statuses.push(res.status)
      }
    }
    const workers = [worker(), worker(), worker()]
    const admin = (await import('postgres')).default(pgUrl as string, {
      max: 1,
      onnotice: () => {},
    })
    try {
      const [{ db }] = (await server.db.sql`select current_database() as db`) as [{ db: string }]
      for (let round = 0; round < 5; round += 1) {
        await Bun.sleep(200)
        await admin`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = ${db} and pid <> pg_backend_pid()
        `
      }
      await Bun.sleep(500)
      running = false
      await Promise.all(workers)
      expect(statuses).not.toContain(500)
      for (const status of new Set(statuses)) expect([200, 201, 503]).toContain(status)
      // A backend killed during a new connection's handshake can leave that connection waiting
      // for its connect_timeout (5 s): the worst case here until a request deadline bounds it.
      expect(slowest).toBeLessThan(6_500)
      // Full service again, without a restart: the first success within 10 s, then ten in a row.
      const members = () =>
        server.request('GET', `/api/v1/projects/${project.id}/members`, { token: owner.access })
      const until = Date.now() + 10_000
      while ((await members()).status !== 200 && Date.now() < until) await Bun.sleep(100)
      const after: number[] = []
      for (let i = 0; i < 10; i += 1) {
        const res = await server.request('POST', '/api/v1/tasks', {
          token: owner.access,
          body: { title: `after ${i}`, project_id: project.id },
        })
        after.push(res.status, (await members()).status)
      }
      expect(after.every((s) => s === 200 || s === 201)).toBe(true)
    } finally {
      running = false
      await admin.end()
    }
  }, 60_000)
})

/**
 * postgres.js itself, as openDatabase configures it, through a proxy that can hold a reconnect or
 * kill a connection at a chosen message: a query on a connection that died must reject (never
 * resolve, least of all with no rows), and the next connection must answer its own queries.
 */
describe.skipIf(!pgUrl)('a pool connection whose backend is terminated', () => {
  const target = new URL(pgUrl ?? 'postgres://127.0.0.1:5432/postgres')
  const proxy = tcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) })
  const log = createLogger('silent')
  const url = new URL(target)
  let admin: postgres.Sql
  const pools: Database[] = []
  /** One connection, so a reconnect reuses the connection object the dead socket belonged to. */
  const onePool = async () => {
    const db = await openDatabase(
      testConfig({ DATABASE_URL: url.toString(), DATABASE_POOL_MAX: '1' }),
      log,
    )
    pools.push(db)
    return db
  }
  const terminate = (pid: number) => admin`select pg_terminate_backend(${pid})`
  type Outcome = { value?: unknown; code?: string }
  const outcome = (query: Promise<unknown>): Promise<Outcome> =>
    query.then(
      (value) => ({ value: Array.isArray(value) ? [...value] : value }),
      (error: { code?: string }) => ({ code: error.code }),
    )
  beforeAll(async () => {
    url.host = `127.0.0.1:${proxy.up()}`
    admin = postgres(pgUrl as string, { max: 1, onnotice: () => {} })
  }, 60_000)
  afterAll(async () => {
    proxy.release()
    for (const db of pools) await db.close()
    await admin.end()
    proxy.down()
  }, 60_000)

  it('a transaction refuses its statements once its connection is gone; none runs on the reconnected one', async () => {
    const db = await onePool()
    const began = Promise.withResolvers<number>()
    const resume = Promise.withResolvers<void>()
    const late = Promise.withResolvers<Outcome>()
    const transaction = outcome(
      db.sql.begin(async (tx) => {
        const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`
        began.resolve(row?.pid as number)
        await resume.promise
        // What a request does next, e.g. read the project it is about to write a task into.
        late.resolve(outcome(tx<{ v: string }[]>`select 'late' as v`))
        return late.promise
      }),
    )
    await terminate(await began.promise)
    expect((await transaction).code).toBeOneOf(['CONNECTION_CLOSED', '57P01'])

    // The pool reconnects the same connection for the next query: hold it there, once its
    // startup message is sent.
    proxy.hold()
    const reconnected = proxy.nextStartup()
    const next = outcome(db.sql<{ v: string }[]>`select 'next' as v`)
    await reconnected
    resume.resolve()
    const lateQuery = late.promise
    // Let the statement reach the socket, as it would if the reconnect were slow, then let it go.
    await Bun.sleep(50)
    proxy.release()

    // Rejected: not resolved with no rows, and not run outside its transaction.
    expect(await lateQuery).toEqual({ code: 'CONNECTION_CLOSED' })
    expect(await next).toEqual({ value: [{ v: 'next' }] })
    for (const v of ['a', 'b', 'c'])
      expect(await outcome(db.sql`select ${v}::text as v`)).toEqual({ value: [{ v }] })
  }, 30_000)

  it('the first query after a backend died mid-query gets its own answer, not that backend’s error', async () => {
    const db = await onePool()
    const [{ pid }] = (await db.sql`select pg_backend_pid() as pid`) as [{ pid: number }]
    const sleeping = outcome(db.sql`select pg_sleep(30)`)
    const until = Date.now() + 10_000
    while (Date.now() < until) {
      const [row] = await admin<{ state: string | null }[]>`
        select state from pg_stat_activity where pid = ${pid}
      `
      if (row?.state === 'active') break
      await Bun.sleep(20)
    }
    await terminate(pid)
    expect((await sleeping).code).toBeOneOf(['CONNECTION_CLOSED', '57P01'])
    expect(await outcome(db.sql`select 'fresh' as v`)).toEqual({ value: [{ v: 'fresh' }] })
  }, 30_000)

  it('a query made just as its connection closes fails alone; the connection then reconnects at once', async () => {
    let onEnd: (() => void) | undefined
    const sql = postgres(pgUrl as string, {
      max: 1,
      connect_timeout: 5,
      onnotice: () => {},
      // postgres.js's usual socket, but the test sees its 'end' (the server closed), which Bun
      // emits in the same turn as 'close': a query made then has its write still pending.
      // (postgres.js reads `socket`, though its types leave it out.)
      ...({
        socket: () => {
          const socket = connect({ host: target.hostname, port: Number(target.port || 5432) })
          socket.once('end', () => {
            onEnd?.()
            onEnd = undefined
          })
          return socket
        },
      } as object),
    })
    try {
      const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`
      const late = new Promise<Outcome>((resolve) => {
        onEnd = () => resolve(outcome(sql`select 'late' as v`))
      })
      await terminate(row?.pid as number)
      expect((await late).code).toBe('CONNECTION_CLOSED')
      // The reconnect writes its startup message at once (a write timer left over from the closed
      // socket kept it from being written, so the query failed at connect_timeout).
      expect(await outcome(sql`select 'next' as v`)).toEqual({ value: [{ v: 'next' }] })
    } finally {
      await sql.end({ timeout: 1 })
    }
  }, 30_000)

  it('a connection killed while it fetches array types reconnects; its first query succeeds, nothing goes unhandled', async () => {
    // A new pool's first connection asks for the array types right after the handshake.
    proxy.killOn('typarray')
    const db = await onePool()
    expect(await outcome(db.sql`select 'first' as v`)).toEqual({ value: [{ v: 'first' }] })
    // The types were fetched on the new connection: arrays are parsed.
    const [row] = await db.sql<{ a: string[] }[]>`select array['x', 'y']::text[] as a`
    expect(row?.a).toEqual(['x', 'y'])
  }, 30_000)
})
