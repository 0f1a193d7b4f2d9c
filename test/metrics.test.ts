import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { serveMetrics } from '../src/metrics'
import { createProject, createTask } from './factories'
import { registerUser, startServer, type TestServer } from './helpers'
import { connectWs, roundTrip, subscribedClient } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let metrics: ReturnType<typeof serveMetrics>
// Registered first: the rate-limit test below spends this address's anonymous requests.
let wsUser: Awaited<ReturnType<typeof registerUser>>
let writer: Awaited<ReturnType<typeof registerUser>>
beforeAll(async () => {
  server = await startServer({ RATE_LIMIT_REQUESTS: '50', MAX_JSON_BODY_BYTES: '4096' })
  wsUser = await registerUser(server)
  writer = await registerUser(server)
  metrics = serveMetrics(server.app.decorator.metrics.registry, {
    hostname: '127.0.0.1',
    port: 0,
  })
}, 60_000)
afterAll(async () => {
  metrics.stop(true)
  await server.close()
}, 60_000)

const scrape = async () => {
  const res = await fetch(`http://127.0.0.1:${metrics.port}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain')
  return res.text()
}

describe('/metrics on its own listener', () => {
  it('exposes the latency histogram after traffic, labelled by route template, never by raw path', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const task = await createTask(server, project.id, owner)
    for (let i = 0; i < 3; i += 1)
      expect(
        (await server.request('GET', `/api/v1/tasks/${task.id}`, { token: owner.access })).status,
      ).toBe(200)
    await server.request('GET', `/api/v1/tasks/${crypto.randomUUID()}`, { token: owner.access })
    await server.request('GET', '/no/such/route')
    // The counters are written after each answer is sent.
    await Bun.sleep(50)
    const text = await scrape()
    expect(text).toContain('# TYPE http_request_duration_seconds histogram')
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="0\.1",method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} \d+/,
    )
    expect(text).toMatch(
      /http_requests_total\{method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} 3/,
    )
    // Buckets are cumulative: +Inf holds every observation, as _count does.
    expect(text).toMatch(
      /^http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} 3$/m,
    )
    expect(text).toMatch(
      /^http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/tasks\/:id",status="200"\} 3$/m,
    )
    expect(text).toContain('route="/api/v1/tasks/:id",status="404"')
    expect(text).toContain('route="unmatched",status="404"')
    // No id of any kind in a label.
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i)
    expect(text).not.toContain('/no/such/route')
  })

  it('has the in-flight, WebSocket, rate-limit and process gauges', async () => {
    for (let i = 0; i < 60; i += 1) await server.request('GET', '/api/v1/projects')
    const text = await scrape()
    expect(text).toMatch(/^http_requests_in_flight \d+$/m)
    expect(text).toMatch(/^websocket_connections 0$/m)
    expect(text).toMatch(/^rate_limit_rejections_total\{policy="api"\} \d+$/m)
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
    expect(text).toContain('nodejs_eventloop_lag_seconds')
    expect(text).toContain('nodejs_heap_size_used_bytes')
  })

  it('counts open WebSockets and the messages they send', async () => {
    const client = await connectWs(server, wsUser.access)
    try {
      await client.next((f) => f.type === 'welcome')
      await roundTrip(client)
      await roundTrip(client)
      const text = await scrape()
      expect(text).toMatch(/^websocket_connections 1$/m)
      const received = /^websocket_messages_received_total (\d+)$/m.exec(text)
      expect(Number(received?.[1])).toBeGreaterThanOrEqual(2)
    } finally {
      client.close()
      await client.closed
    }
  })

  it('counts answers given before routing (415, 413) as route="unrouted"', async () => {
    const wrongType = await fetch(`${server.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    })
    expect(wrongType.status).toBe(415)
    const tooLarge = await fetch(`${server.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'x'.repeat(5000) }),
    })
    expect(tooLarge.status).toBe(413)
    const text = await scrape()
    expect(text).toMatch(/^http_requests_total\{method="POST",route="unrouted",status="415"\} 1$/m)
    expect(text).toMatch(/^http_requests_total\{method="POST",route="unrouted",status="413"\} 1$/m)
    expect(text).toMatch(
      /^http_request_duration_seconds_count\{method="POST",route="unrouted",status="415"\} 1$/m,
    )
  })

  it('has the query latency histogram by statement kind, and the queries in flight', async () => {
    const project = await createProject(server, writer)
    const task = await createTask(server, project.id, writer)
    const read = await server.request('GET', `/api/v1/tasks/${task.id}`, { token: writer.access })
    expect(read.status).toBe(200)
    const text = await scrape()
    expect(text).toContain('# TYPE db_query_duration_seconds histogram')
    const count = (kind: string) =>
      Number(
        new RegExp(
          `^db_query_duration_seconds_count\\{kind="${kind}",outcome="ok"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      )
    expect(count('select')).toBeGreaterThan(0)
    expect(count('insert')).toBeGreaterThan(0)
    expect(count('transaction')).toBeGreaterThan(0)
    expect(text).toMatch(
      /^db_query_duration_seconds_bucket\{le="\+Inf",kind="select",outcome="ok"\} \d+$/m,
    )
    // Idle now: nothing handed to the pool is left unanswered.
    expect(text).toMatch(/^db_queries_in_flight 0$/m)
    // A failed statement is counted as an error, never with its text.
    await server.db.sql`select 1/0`.catch(() => {})
    expect(await scrape()).toMatch(
      /^db_query_duration_seconds_count\{kind="select",outcome="error"\} [1-9]\d*$/m,
    )
    expect(text).not.toContain('from tasks')
  })

  it('counts the messages published to WebSocket topics', async () => {
    const published = async () =>
      Number(/^websocket_messages_published_total (\d+)$/m.exec(await scrape())?.[1] ?? Number.NaN)
    const before = await published()
    expect(before).toBeGreaterThanOrEqual(0)
    const project = await createProject(server, writer)
    const client = await subscribedClient(server, writer.access, project.id)
    let after = before
    try {
      const created = await server.request('POST', '/api/v1/tasks', {
        token: writer.access,
        body: { title: 'Published', project_id: project.id },
      })
      expect(created.status).toBe(201)
      await client.next((f) => f.type === 'event' && f.event === 'task.created')
      after = await published()
    } finally {
      client.close()
      await client.closed
    }
    expect(after).toBeGreaterThan(before)
  })

  it('answers 404 to anything but GET /metrics', async () => {
    expect((await fetch(`http://127.0.0.1:${metrics.port}/`)).status).toBe(404)
  })
})
