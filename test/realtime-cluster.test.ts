import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { join } from 'node:path'
import postgres from 'postgres'
import type { AppContext } from '../src/context'
import { openDatabase } from '../src/db'
import { createLogger } from '../src/logger'
import { insertNotifications } from '../src/modules/notifications/queries'
import { announceNotifications, recordEvent } from '../src/realtime/events'
import { RealtimeHub } from '../src/realtime/hub'
import { selectEventsAfter } from '../src/realtime/queries'
import { AnnouncingSessionCache } from '../src/realtime/session-cache'
import { createProject } from './factories'
import {
  databaseUrlOf,
  type Peer,
  registerUser,
  startPeer,
  startServer,
  type TestServer,
  testConfig,
} from './helpers'
import { connectWs, type Frame, roundTrip, subscribedClient, type WsClient } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Several processes on one PostgreSQL: LISTEN/NOTIFY, the listener's backend, interleaved
// transactions. The embedded database is one process and one session, so none of this applies.
const postgresOnly = !process.env.DATABASE_URL

let server: TestServer
let peer: Peer
let databaseUrl: string
const open: WsClient[] = []

beforeAll(async () => {
  if (postgresOnly) return
  server = await startServer()
  peer = await startPeer(server)
  databaseUrl = await databaseUrlOf(server)
}, 60_000)
afterAll(async () => {
  if (postgresOnly) return
  for (const client of open) client.close()
  await peer.close()
  await server.close()
}, 30_000)

const call = (base: string, method: string, path: string, token?: string, body?: unknown) =>
  fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  })

const kept = (client: WsClient) => {
  open.push(client)
  return client
}
const events = (client: WsClient) => client.frames.filter((f: Frame) => f.type === 'event')

describe('two instances on one database', () => {
  it.skipIf(postgresOnly)(
    'delivers an event made through one instance to a socket on the other',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const onA = kept(await subscribedClient(server, owner.access, project.id))
      const res = await call(peer.url, 'POST', '/tasks', owner.access, {
        title: 'Made on B',
        project_id: project.id,
      })
      expect(res.status).toBe(201)
      const event = await onA.next((f) => f.type === 'event')
      expect(event).toMatchObject({ event: 'task.created', data: { task: { title: 'Made on B' } } })
    },
    30_000,
  )

  it.skipIf(postgresOnly)(
    'carries payloads over NOTIFY’s 8000 bytes by reference, events and notifications',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const onA = kept(await subscribedClient(server, owner.access, project.id))
      const description = 'é'.repeat(20_000)
      const res = await call(peer.url, 'POST', '/tasks', owner.access, {
        title: 'Big',
        project_id: project.id,
        description,
      })
      expect(res.status).toBe(201)
      const event = await onA.next((f) => f.type === 'event')
      expect(event.data.task.description).toBe(description)
      const message = 'm'.repeat(10_000)
      // No route writes a notification this large: store one through B's pool, as a service would.
      const [stored] = await peer.db.sql.begin(async (tx) =>
        announceNotifications(
          tx,
          await insertNotifications(tx, [
            {
              user_id: owner.id,
              type: 'mentioned',
              title: 'Big',
              message,
              entity_type: 'project',
              entity_id: project.id,
            },
          ]),
        ),
      )
      const pushed = await onA.next((f) => f.type === 'notification')
      expect(pushed.data).toMatchObject({ id: stored?.id, message })
    },
    30_000,
  )

  it.skipIf(postgresOnly)(
    'ends a session logged out on one instance on the other within a second',
    async () => {
      const user = await registerUser(server)
      // B has the session cached as live, and a socket of it.
      expect((await call(peer.url, 'GET', '/users/me', user.access)).status).toBe(200)
      const onB = await connectWs(peer, user.access)
      await onB.next()
      const started = Date.now()
      expect((await call(server.url, 'POST', '/auth/logout', user.access)).status).toBe(204)
      let status = 200
      while (status === 200 && Date.now() - started < 1_000) {
        status = (await call(peer.url, 'GET', '/users/me', user.access)).status
        if (status === 200) await Bun.sleep(20)
      }
      expect(status).toBe(401)
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(await onB.closed).toEqual({ code: 4401, reason: 'session_ended' })
    },
    30_000,
  )

  it.skipIf(postgresOnly)(
    'lets an API token in again on the other instance once its owner is reactivated',
    async () => {
      // Its own pair: the first account is the admin, and the other instance keeps what it
      // caches for an hour, so only the reactivation's announcement can clear a refusal there.
      const first = await startServer()
      const other = await startPeer(first, { SESSION_CACHE_TTL_MS: '3600000' })
      try {
        const admin = await registerUser(first)
        const worker = await registerUser(first)
        const created = await call(first.url, 'POST', '/tokens', worker.access, {
          name: 'cluster',
          scopes: ['users:read'],
        })
        const { token } = (await created.json()) as { token: string }
        const setActive = async (is_active: boolean) =>
          expect(
            (
              await call(first.url, 'PATCH', `/admin/users/${worker.id}`, admin.access, {
                is_active,
              })
            ).status,
          ).toBe(200)
        await setActive(false)
        // The other instance reads the token as refused, and keeps that.
        expect((await call(other.url, 'GET', '/users', token)).status).toBe(401)
        await setActive(true)
        // Until the announcement arrives the refusal stands; it arrives in milliseconds.
        let status = 401
        for (let i = 0; i < 250 && status === 401; i += 1) {
          status = (await call(other.url, 'GET', '/users', token)).status
          if (status === 401) await Bun.sleep(20)
        }
        expect(status).toBe(200)
      } finally {
        await other.close()
        await first.close()
      }
    },
    30_000,
  )

  it.skipIf(postgresOnly)(
    'stops a removed member’s events on the other instance too',
    async () => {
      const owner = await registerUser(server)
      const member = await registerUser(server)
      const project = await createProject(server, owner, [[member, 'member']])
      const onB = kept(await subscribedClient(peer, member.access, project.id))
      const res = await call(
        server.url,
        'DELETE',
        `/projects/${project.id}/members/${member.id}`,
        owner.access,
      )
      expect(res.status).toBe(204)
      expect(await onB.next((f) => f.type === 'error')).toMatchObject({ code: 'forbidden' })
      await call(server.url, 'POST', '/tasks', owner.access, {
        title: 'Hidden',
        project_id: project.id,
      })
      await roundTrip(onB)
      // Its own addition may arrive just after subscribing; nothing arrives after the removal.
      expect(
        events(onB)
          .map((f) => f.event)
          .at(-1),
      ).toBe('member.removed')
      expect(events(onB).map((f) => f.event)).not.toContain('task.created')
    },
    30_000,
  )
})

describe('ordering', () => {
  it.skipIf(postgresOnly)(
    'commits a project’s event ids in order even when transactions interleave',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const sql = server.db.sql
      const event = (n: string) => ({
        project_id: project.id,
        event: 'task.updated' as const,
        data: { n },
      })

      // An event stored without the project's lock (what recordEvent adds).
      const insertEvent = async (tx: postgres.TransactionSql, e: ReturnType<typeof event>) => {
        const [row] = await tx<{ id: string }[]>`
          insert into events (project_id, event, data)
          values (${e.project_id}, ${e.event}, ${tx.json(e.data)})
          returning id
        `
        return { id: Number(row?.id) }
      }
      // Without the lock, the trap: A takes the lower id, B commits first with a higher one, and
      // a reader that has passed B's id never sees A's.
      let releaseRaw = () => {}
      const rawHeld = new Promise<void>((resolve) => {
        releaseRaw = resolve
      })
      const rawA = sql.begin(async (tx) => {
        const inserted = await insertEvent(tx, event('raw A'))
        await rawHeld
        return inserted
      })
      await Bun.sleep(100)
      const rawB = await sql.begin((tx) => insertEvent(tx, event('raw B')))
      const readerSees = (await selectEventsAfter(sql, project.id, 0, 10)).map((e) => e.id)
      releaseRaw()
      const rawAId = (await rawA).id
      expect(rawAId).toBeLessThan(rawB.id)
      expect(readerSees).toEqual([rawB.id])

      // With recordEvent, B waits for A's project lock: commits follow ids.
      const watcher = kept(await subscribedClient(server, owner.access, project.id, rawB.id))
      const committed: string[] = []
      let releaseA = () => {}
      const held = new Promise<void>((resolve) => {
        releaseA = resolve
      })
      const a = sql
        .begin(async (tx) => {
          const recorded = await recordEvent(tx, event('A'))
          await held
          return recorded
        })
        .then((recorded) => {
          committed.push('A')
          return recorded
        })
      await Bun.sleep(100)
      const b = sql
        .begin((tx) => recordEvent(tx, event('B')))
        .then((recorded) => {
          committed.push('B')
          return recorded
        })
      await Bun.sleep(300)
      expect(committed).toEqual([])
      const since = rawB.id
      expect(await selectEventsAfter(sql, project.id, since, 10)).toEqual([])
      const released = Date.now()
      releaseA()
      const [ea, eb] = await Promise.all([a, b])
      expect(committed.sort()).toEqual(['A', 'B'])
      expect(ea.id).toBeLessThan(eb.id)
      // B got its id (and its insert time) only once A had committed and let the lock go.
      expect(Date.parse(eb.at)).toBeGreaterThanOrEqual(released - 1)
      const first = await watcher.next((f) => f.type === 'event')
      const second = await watcher.next((f) => f.type === 'event')
      expect([first.data.n, second.data.n]).toEqual(['A', 'B'])
      expect([first.id, second.id]).toEqual([ea.id, eb.id])

      // Another project is not held up by the lock.
      const other = await createProject(server, owner)
      let releaseC = () => {}
      const heldC = new Promise<void>((resolve) => {
        releaseC = resolve
      })
      const c = sql.begin(async (tx) => {
        await recordEvent(tx, event('C'))
        await heldC
      })
      await Bun.sleep(50)
      const started = Date.now()
      await sql.begin((tx) => recordEvent(tx, { ...event('D'), project_id: other.id }))
      expect(Date.now() - started).toBeLessThan(1_000)
      releaseC()
      await c
    },
    30_000,
  )
})

describe('announced after the commit', () => {
  it.skipIf(postgresOnly)(
    'sends a project’s events in id order, each once, when writers on two instances race',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const watcher = kept(await subscribedClient(server, owner.access, project.id))
      // Twenty-four creates at once, half through each instance: their transactions interleave,
      // and each NOTIFY goes out after its commit, on its own connection.
      const statuses = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          call(i % 2 === 0 ? server.url : peer.url, 'POST', '/tasks', owner.access, {
            title: `Race ${i}`,
            project_id: project.id,
          }).then((res) => res.status),
        ),
      )
      expect(statuses).toEqual(Array(24).fill(201))
      const stored = await server.db.sql<{ id: string }[]>`
        select id from events where project_id = ${project.id} order by id
      `
      expect(stored.length).toBe(24)
      for (let i = 0; i < stored.length; i++) await watcher.next((f) => f.type === 'event', 15_000)
      await roundTrip(watcher)
      // No resync (a late, lower id closes the socket): every id once, ascending.
      expect(events(watcher).map((f) => f.id)).toEqual(stored.map((r) => Number(r.id)))
      // Every project lock taken for those events was released with its NOTIFY.
      const [held] = await server.db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory'
          and database = (select oid from pg_database where datname = current_database())
      `
      expect(held?.n).toBe(0)
    },
    60_000,
  )

  it.skipIf(postgresOnly)(
    'announces inside the transaction behind PgBouncer in transaction mode (DATABASE_PREPARE=false)',
    async () => {
      const bouncer = await startServer({ DATABASE_PREPARE: 'false' })
      try {
        const owner = await registerUser(bouncer)
        const project = await createProject(bouncer, owner)
        const watcher = kept(await subscribedClient(bouncer, owner.access, project.id))
        const res = await call(bouncer.url, 'POST', '/tasks', owner.access, {
          title: 'Bounced',
          project_id: project.id,
        })
        expect(res.status).toBe(201)
        const event = await watcher.next((f) => f.type === 'event', 15_000)
        expect(event).toMatchObject({ event: 'task.created', data: { task: { title: 'Bounced' } } })
        watcher.close()
      } finally {
        await bouncer.close()
      }
    },
    60_000,
  )

  it.skipIf(postgresOnly)(
    'releases the project’s lock when the transaction that recorded an event rolls back',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const sql = server.db.sql
      // The event is recorded, then the commit's last statement fails: a deferred constraint
      // trigger on events that raises, checked at COMMIT.
      await sql.unsafe(`
        create function refuse_event() returns trigger language plpgsql as $$
        begin raise exception 'event refused'; end $$;
        create constraint trigger refuse_event after insert on events
          deferrable initially deferred
          for each row when (new.data->'task'->>'title' = 'Refused') execute function refuse_event();
      `)
      try {
        const refused = await call(server.url, 'POST', '/tasks', owner.access, {
          title: 'Refused',
          project_id: project.id,
        })
        expect(refused.status).toBe(500)
      } finally {
        await sql.unsafe('drop trigger refuse_event on events; drop function refuse_event();')
      }
      const [held] = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory'
          and database = (select oid from pg_database where datname = current_database())
      `
      expect(held?.n).toBe(0)
      const [stored] = await sql<{ n: number }[]>`
        select count(*)::int as n from tasks where project_id = ${project.id}
      `
      expect(stored?.n).toBe(0)
      // The project takes writes again, through both instances.
      for (const base of [server.url, peer.url]) {
        const res = await call(base, 'POST', '/tasks', owner.access, {
          title: 'Accepted',
          project_id: project.id,
        })
        expect(res.status).toBe(201)
      }
    },
    60_000,
  )
})

describe('the replay seam', () => {
  it.skipIf(postgresOnly)(
    'sends no replayed event twice when its NOTIFY reaches the hub only after the replay',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const created = await call(server.url, 'POST', '/tasks', owner.access, {
        title: 'Seam',
        project_id: project.id,
      })
      const task = (await created.json()) as { id: string }
      const client = kept(await connectWs(server, owner.access))
      await client.next()
      // Stall the hub: it reads back a notification too large for NOTIFY, and a lock request
      // queued before its commit makes that read wait; every later signal waits its turn.
      const gate = () => {
        let open = () => {}
        const opened = new Promise<void>((resolve) => {
          open = resolve
        })
        return { open, opened }
      }
      const inserted = gate()
      const commitBig = gate()
      const locked = gate()
      const unlock = gate()
      const big = server.db.sql.begin(async (tx) => {
        await announceNotifications(
          tx,
          await insertNotifications(tx, [
            {
              user_id: owner.id,
              type: 'mentioned',
              title: 'Big',
              message: 'm'.repeat(10_000),
              entity_type: 'project',
              entity_id: project.id,
            },
          ]),
        )
        inserted.open()
        await commitBig.opened
      })
      await inserted.opened
      const blocker = server.db.sql.begin(async (tx) => {
        await tx`lock table notifications in access exclusive mode`
        locked.open()
        await unlock.opened
      })
      await Bun.sleep(100)
      commitBig.open()
      await big
      await locked.opened
      for (let i = 1; i <= 5; i++)
        await call(server.url, 'PATCH', `/tasks/${task.id}`, owner.access, { title: `Seam ${i}` })
      // The replay reads all six events while their NOTIFYs are still queued behind the stall.
      client.send({ type: 'subscribe', topic: `project:${project.id}`, since: 0 })
      for (let i = 0; i < 6; i++) await client.next((f) => f.type === 'event')
      unlock.open()
      await blocker
      await client.next((f) => f.type === 'notification')
      await call(server.url, 'PATCH', `/tasks/${task.id}`, owner.access, { title: 'Live' })
      await client.next((f) => f.type === 'event' && f.data.task.title === 'Live')
      await roundTrip(client)
      const ids = events(client).map((f) => f.id)
      expect(ids.length).toBe(7)
      expect(new Set(ids).size).toBe(7)
      expect(ids).toEqual([...ids].sort((x, y) => x - y))
    },
    30_000,
  )
})

describe('the LISTEN connection', () => {
  it.skipIf(postgresOnly)(
    'loses no committed event when its backend is terminated while changes are made',
    async () => {
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      const watcher = kept(await subscribedClient(server, owner.access, project.id))
      const created = await call(server.url, 'POST', '/tasks', owner.access, {
        title: 'Edit 0',
        project_id: project.id,
      })
      const task = (await created.json()) as { id: string }
      const listeners = () => server.db.sql<{ pid: number }[]>`
        select pid from pg_stat_activity
        where datname = current_database() and query ilike 'listen%'
      `
      expect((await listeners()).length).toBe(2)
      for (let i = 1; i <= 40; i++) {
        if (i === 10 || i === 25)
          await server.db.sql`
            select pg_terminate_backend(pid) from pg_stat_activity
            where datname = current_database() and query ilike 'listen%'
          `
        // Through the peer too: the same database, another process's writes.
        const base = i % 2 === 0 ? server.url : peer.url
        const res = await call(base, 'PATCH', `/tasks/${task.id}`, owner.access, {
          title: `Edit ${i}`,
        })
        expect(res.status).toBe(200)
      }
      const stored = await server.db.sql<{ id: string }[]>`
        select id from events where project_id = ${project.id} order by id
      `
      expect(stored.length).toBe(41)
      for (let i = 0; i < stored.length; i++) await watcher.next((f) => f.type === 'event', 15_000)
      await roundTrip(watcher)
      expect(events(watcher).map((f) => f.id)).toEqual(stored.map((r) => Number(r.id)))
      expect((await listeners()).length).toBe(2)
    },
    60_000,
  )
})

describe('a listener that cannot reconnect at once', () => {
  it.skipIf(postgresOnly)(
    'reads what committed while the database refused its reconnects (heartbeat on)',
    async () => {
      const log = createLogger('silent')
      const config = testConfig({ DATABASE_URL: databaseUrl })
      const db = await openDatabase(config, log)
      const sessions = new AnnouncingSessionCache(0)
      const ctx = { sql: db.sql, log, config } as unknown as AppContext
      const hub = new RealtimeHub(ctx, db, sessions, 200)
      const delivered = (hub as unknown as { delivered: Set<number> }).delivered
      await hub.start()
      const [row] = await db.sql<{ name: string }[]>`select current_database() as name`
      // A database cannot refuse connections to itself: this is said from another one.
      const admin = postgres(process.env.DATABASE_URL as string, { max: 1, onnotice: () => {} })
      const name = admin(row?.name as string)
      const owner = await registerUser(server)
      const project = await createProject(server, owner)
      try {
        // The listener's reconnects fail while the database refuses connections (pools keep
        // the connections they have); an event commits meanwhile.
        await admin`alter database ${name} allow_connections false`
        // Through the admin connection: the hub's pool may need a new connection for it, refused.
        await admin`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = ${row?.name as string} and query ilike 'listen%'
        `
        await Bun.sleep(1_000)
        const event = await server.db.sql.begin((tx) =>
          recordEvent(tx, { project_id: project.id, event: 'project.updated', data: {} }),
        )
        await admin`alter database ${name} allow_connections true`
        const until = Date.now() + 5_000
        while (!delivered.has(event.id) && Date.now() < until) await Bun.sleep(50)
        expect(delivered.has(event.id)).toBe(true)
      } finally {
        await admin`alter database ${name} allow_connections true`
        await admin.end()
        await hub.stop()
        await db.close()
      }
    },
    30_000,
  )
})

describe('shutdown', () => {
  it.skipIf(postgresOnly)(
    'closes every socket with 1001 on SIGTERM, then exits',
    async () => {
      const proc = Bun.spawn(['bun', join(import.meta.dir, '..', 'src', 'index.ts')], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          PORT: '0',
          METRICS_PORT: '0',
          HOST: '127.0.0.1',
          DATABASE_URL: databaseUrl,
          JWT_SECRET: 'x'.repeat(48),
          PASSWORD_HASH_CONCURRENCY: '1',
        },
        stdout: 'pipe',
        stderr: 'pipe',
      })
      try {
        const decoder = new TextDecoder()
        let seen = ''
        let url: string | undefined
        const reader = proc.stdout.getReader()
        while (!url) {
          const { value, done } = await reader.read()
          if (done) throw new Error(`server did not start: ${seen}`)
          seen += decoder.decode(value)
          const match = /"msg":"listening","url":"http:\/\/[^:]+:(\d+)"/.exec(seen)
          if (match) url = `http://127.0.0.1:${match[1]}`
        }
        void (async () => {
          for (;;) if ((await reader.read()).done) return
        })()
        const base = url
        const user = await registerUser({
          request: async (method: string, path: string, init: { body?: unknown } = {}) => {
            const res = await fetch(base + path, {
              method,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(init.body),
            })
            const text = await res.text()
            return { status: res.status, headers: res.headers, body: JSON.parse(text), text }
          },
        } as unknown as TestServer)
        const client = await connectWs({ url: base }, user.access)
        await client.next()
        proc.kill('SIGTERM')
        expect((await client.closed).code).toBe(1001)
        expect(await proc.exited).toBe(0)
      } finally {
        proc.kill('SIGKILL')
      }
    },
    60_000,
  )
})
