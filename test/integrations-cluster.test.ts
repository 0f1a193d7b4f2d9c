import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { type Peer, registerUser, startPeer, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Two instances on one PostgreSQL, each with its own pool and LISTEN connection, as two
// processes would be. The embedded database is one process, so this runs on PostgreSQL only.
const postgresOnly = !process.env.DATABASE_URL

const FAST = { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: '20', WEBHOOK_RETRY_BASE_MS: '20' }

let server: TestServer
let peer: Peer

beforeAll(async () => {
  if (postgresOnly) return
  server = await startServer(FAST)
  peer = await startPeer(server, FAST)
}, 60_000)
afterAll(async () => {
  if (postgresOnly) return
  await peer.close()
  await server.close()
}, 30_000)

async function call(
  base: string,
  method: string,
  path: string,
  token: string,
  init: { body?: unknown; key?: string } = {},
) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...(init.key ? { 'idempotency-key': init.key } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  })
  const text = await res.text()
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: text ? JSON.parse(text) : undefined,
  }
}

describe.skipIf(postgresOnly)('integrations on two instances', () => {
  it('stops a revoked API token on the other instance at once', async () => {
    const owner = await registerUser(server)
    const made = await call(server.url, 'POST', '/tokens', owner.access, {
      body: { name: 'cluster', scopes: ['users:read'] },
    })
    expect(made.status).toBe(201)
    // The peer caches the token (SESSION_CACHE_TTL_MS, 5 s by default) ...
    expect((await call(peer.url, 'GET', '/users/me', made.body.token)).status).toBe(200)
    expect((await call(server.url, 'DELETE', `/tokens/${made.body.id}`, owner.access)).status).toBe(
      204,
    )
    // ... and drops it when the revocation arrives, well before the cache entry would expire.
    const started = Date.now()
    let status = 200
    while (status === 200 && Date.now() - started < 2_000) {
      status = (await call(peer.url, 'GET', '/users/me', made.body.token)).status
      if (status === 200) await Bun.sleep(20)
    }
    expect(status).toBe(401)
    expect(Date.now() - started).toBeLessThan(1_000)
  }, 30_000)

  it('runs one of many concurrent POSTs with one key spread over both instances', async () => {
    const owner = await registerUser(server)
    const key = `cluster-${crypto.randomUUID()}`
    const name = `Cluster ${crypto.randomUUID()}`
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call(i % 2 ? peer.url : server.url, 'POST', '/projects', owner.access, {
          body: { name },
          key,
        }),
      ),
    )
    const originals = answers.filter(
      (a) => a.status === 201 && !a.headers.get('idempotency-replayed'),
    )
    expect(originals).toHaveLength(1)
    for (const a of answers) expect([201, 409]).toContain(a.status)
    const [row] = await server.db.sql<
      { n: number }[]
    >`select count(*)::int as n from projects where name = ${name}`
    expect(row?.n).toBe(1)
  }, 30_000)

  it('delivers each event exactly once to a healthy receiver', async () => {
    const received: string[] = []
    const rx = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(request) {
        received.push(request.headers.get('webhook-id') as string)
        return new Response('ok')
      },
    })
    try {
      const owner = await registerUser(server)
      const project = await call(server.url, 'POST', '/projects', owner.access, {
        body: { name: 'Pair' },
      })
      const hook = await call(
        server.url,
        'POST',
        `/projects/${project.body.id}/webhooks`,
        owner.access,
        {
          body: { url: `http://127.0.0.1:${rx.port}/`, events: ['task.created'] },
        },
      )
      expect(hook.status).toBe(201)
      const count = 40
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          call(i % 2 ? peer.url : server.url, 'POST', '/tasks', owner.access, {
            body: { title: `T${i}`, project_id: project.body.id },
          }),
        ),
      )
      const end = Date.now() + 20_000
      while (received.length < count && Date.now() < end) await Bun.sleep(20)
      await Bun.sleep(500)
      expect(received).toHaveLength(count)
      expect(new Set(received).size).toBe(count)
    } finally {
      rx.stop(true)
    }
  }, 60_000)
})
