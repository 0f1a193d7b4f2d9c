import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import postgres from 'postgres'
import { createProject, createTask } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const pgUrl = process.env.DATABASE_URL

describe.skipIf(!pgUrl)('REQUEST_TIMEOUT_MS on PostgreSQL', () => {
  let server: TestServer
  beforeAll(async () => {
    // One pool connection: a slot left held after the deadline would block every later request.
    server = await startServer({
      REQUEST_TIMEOUT_MS: '700',
      DATABASE_POOL_MAX: '1',
      DATABASE_STATEMENT_TIMEOUT_MS: '30000',
    })
  }, 60_000)
  afterAll(() => server.close(), 60_000)

  it('answers 503 at the deadline, cancels the waiting query, frees its slot and writes nothing', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const task = await createTask(server, project.id, owner, { title: 'Before' })
    const [{ db }] = (await server.db.sql`select current_database() as db`) as [{ db: string }]
    const url = new URL(pgUrl as string)
    url.pathname = `/${db}`
    const locker = postgres(url.toString(), { max: 1, onnotice: () => {} })
    const watcher = postgres(url.toString(), { max: 1, onnotice: () => {} })
    const locked = Promise.withResolvers<void>()
    const release = Promise.withResolvers<void>()
    const holding = locker.begin(async (tx) => {
      await tx`select id from tasks where id = ${task.id} for update`
      locked.resolve()
      await release.promise
    })
    try {
      await locked.promise
      const start = performance.now()
      const res = await server.request('PATCH', `/api/v1/tasks/${task.id}`, {
        token: owner.access,
        body: { title: 'After' },
      })
      const ms = performance.now() - start
      expectProblemShape(res, 503)
      expect(res.headers.get('retry-after')).toBe('1')
      expect(ms).toBeGreaterThanOrEqual(650)
      expect(ms).toBeLessThan(3_000)
      // The update no longer waits on PostgreSQL: the cancel reached it.
      const until = Date.now() + 3_000
      let waiting = 1
      while (waiting > 0 && Date.now() < until) {
        const [row] = await watcher`
          select count(*)::int as n from pg_stat_activity
          where datname = ${db} and application_name = 'taskapi' and wait_event_type = 'Lock'
        `
        waiting = row?.n ?? 0
        if (waiting > 0) await Bun.sleep(50)
      }
      expect(waiting).toBe(0)
      // The only pool connection is free again while the lock is still held.
      const read = await server.request('GET', `/api/v1/projects/${project.id}`, {
        token: owner.access,
      })
      expect(read.status).toBe(200)
    } finally {
      release.resolve()
      await holding
      await locker.end()
      await watcher.end()
    }
    const after = await server.request('GET', `/api/v1/tasks/${task.id}`, { token: owner.access })
    expect(after.status).toBe(200)
    expect(after.body.title).toBe('Before')
    expect(after.body.version).toBe(task.version)
  }, 60_000)

  it('a request within the deadline is unaffected', async () => {
    const owner = await registerUser(server)
    const res = await server.request('GET', '/api/v1/users/me', { token: owner.access })
    expect(res.status).toBe(200)
  })
})
