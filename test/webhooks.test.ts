import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { Webhook } from 'standardwebhooks'
import { createApp } from '../src/app'
import { createLogger } from '../src/logger'
import {
  destinationProblem,
  isPublicAddress,
  pinnedRequest,
} from '../src/modules/webhooks/destination'
import { expectProblemShape, startServer, type TestServer, testConfig } from './helpers'
import { createTeam, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

type Received = { headers: Record<string, string>; body: string; at: number }

/** A loopback receiver: answers `failFirst` times with 500, then 200; keeps every request. */
function receiver(failFirst = 0) {
  const received: Received[] = []
  let failures = failFirst
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      received.push({
        headers: Object.fromEntries(request.headers),
        body: await request.text(),
        at: Date.now(),
      })
      if (failures > 0) {
        failures -= 1
        return new Response('nope '.repeat(1000), { status: 500 })
      }
      return new Response('ok')
    },
  })
  return { url: `http://127.0.0.1:${server.port}/hook`, received, stop: () => server.stop(true) }
}

const FAST = {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_POLL_MS: '25',
  WEBHOOK_RETRY_BASE_MS: '20',
  // A receiver that does not answer fails after 1 s here (10 s by default).
  WEBHOOK_TIMEOUT_MS: '1000',
}

let server: TestServer
let team: Team
beforeAll(async () => {
  server = await startServer(FAST)
  team = await createTeam(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

const hooksOf = (projectId: string) => `/api/v1/projects/${projectId}/webhooks`

async function createHook(url: string, events: string[] = ['*'], projectId = team.project.id) {
  const res = await server.request('POST', hooksOf(projectId), {
    token: team.owner.access,
    body: { url, events },
  })
  if (res.status !== 201) throw new Error(`webhook create failed: ${res.status} ${res.text}`)
  return res.body as { id: string; secret: string }
}

async function until<T>(probe: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value || Date.now() > end) return value
    await Bun.sleep(20)
  }
}

async function newTask(title: string, projectId = team.project.id) {
  const res = await server.request('POST', '/api/v1/tasks', {
    token: team.member.access,
    body: { title, project_id: projectId },
  })
  expect(res.status).toBe(201)
  return res.body as { id: string }
}

describe('webhooks: management', () => {
  it('shows the secret once, hides it after, rotates it, changes and deletes', async () => {
    const created = await createHook('http://127.0.0.1:9/none', ['task.created'])
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    const path = `${hooksOf(team.project.id)}/${created.id}`
    const read = await server.request('GET', path, { token: team.manager.access })
    expect(read.status).toBe(200)
    expect(read.body.secret).toBeUndefined()
    const list = await server.request('GET', hooksOf(team.project.id), { token: team.owner.access })
    expect(JSON.stringify(list.body)).not.toContain(created.secret)
    const rotated = await server.request('POST', `${path}/rotate-secret`, {
      token: team.owner.access,
    })
    expect(rotated.status).toBe(200)
    expect(rotated.body.secret).toMatch(/^whsec_/)
    expect(rotated.body.secret).not.toBe(created.secret)
    const changed = await server.request('PATCH', path, {
      token: team.manager.access,
      body: { events: ['task.updated', 'comment.created'], description: 'CI', active: false },
    })
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({
      events: ['task.updated', 'comment.created'],
      description: 'CI',
      active: false,
    })
    const bad = await server.request('PATCH', path, {
      token: team.owner.access,
      body: { events: ['task.exploded'] },
    })
    expectProblemShape(bad, 422)
    expect((await server.request('DELETE', path, { token: team.owner.access })).status).toBe(204)
    expectProblemShape(await server.request('GET', path, { token: team.owner.access }), 404)
  })

  it('is for owners, managers and admins only', async () => {
    const hook = await createHook('http://127.0.0.1:9/none')
    const path = `${hooksOf(team.project.id)}/${hook.id}`
    for (const who of [team.member, team.viewer, team.outsider]) {
      expectProblemShape(
        await server.request('GET', hooksOf(team.project.id), { token: who.access }),
        403,
      )
      expectProblemShape(await server.request('GET', path, { token: who.access }), 403)
      expectProblemShape(
        await server.request('POST', hooksOf(team.project.id), {
          token: who.access,
          body: { url: 'http://127.0.0.1:9/x', events: ['*'] },
        }),
        403,
      )
      expectProblemShape(
        await server.request('POST', `${path}/rotate-secret`, { token: who.access }),
        403,
      )
      expectProblemShape(await server.request('DELETE', path, { token: who.access }), 403)
    }
    expect((await server.request('GET', path, { token: team.admin.access })).status).toBe(200)
    // Idempotency-Key on a route whose answer holds a secret: 400.
    expectProblemShape(
      await server.request('POST', hooksOf(team.project.id), {
        token: team.owner.access,
        body: { url: 'http://127.0.0.1:9/x', events: ['*'] },
        headers: { 'idempotency-key': 'k1' },
      }),
      400,
    )
  })

  it('tells public addresses from the rest', async () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:808:808'])
      expect(`${address}: ${isPublicAddress(address)}`).toBe(`${address}: true`)
    for (const address of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:10.0.0.1',
      '::ffff:7f00:1',
      '64:ff9b::a00:1',
      'not an address',
    ])
      expect(`${address}: ${isPublicAddress(address)}`).toBe(`${address}: false`)
    expect(await destinationProblem('https://user:pw@8.8.8.8/', false)).toContain('credentials')
    expect(await destinationProblem('https://8.8.8.8/hook', false)).toBeUndefined()
    expect(await destinationProblem('http://127.0.0.1/hook', true)).toBeUndefined()
  })

  it('refuses non-public destinations without WEBHOOK_ALLOW_PRIVATE, at create and at delivery', async () => {
    const strict = await startServer({ WEBHOOK_POLL_MS: '25', WEBHOOK_RETRY_BASE_MS: '20' })
    const rx = receiver()
    try {
      const strictTeam = await createTeam(strict)
      for (const url of [
        'http://127.0.0.1/x',
        'http://10.0.0.1/x',
        'http://169.254.169.254/latest/meta-data',
        'http://[::1]:8080/x',
        'http://localhost/x',
        'http://[::ffff:127.0.0.1]/x',
        'ftp://example.com/x',
      ]) {
        const res = await strict.request('POST', hooksOf(strictTeam.project.id), {
          token: strictTeam.owner.access,
          body: { url, events: ['*'] },
        })
        try {
          expectProblemShape(res, 422)
        } catch (error) {
          throw new Error(`${url}: ${(error as Error).message}`)
        }
      }
      const [row] = await strict.db.sql<{ n: number }[]>`select count(*)::int as n from webhooks`
      expect(row?.n).toBe(0)

      // A name that resolves to loopback now (as after a DNS change since the webhook was saved):
      // the delivery resolves it again and refuses, and the receiver is never called.
      const port = new URL(rx.url).port
      const [hook] = await strict.db.sql<{ id: string }[]>`
        insert into webhooks (project_id, url, events, secret, created_by)
        values (
          ${strictTeam.project.id}, ${`http://localhost:${port}/hook`}, ${['task.created']},
          ${`whsec_${btoa('s'.repeat(32))}`}, ${strictTeam.owner.id}
        )
        returning id
      `
      const task = await strict.request('POST', '/api/v1/tasks', {
        token: strictTeam.owner.access,
        body: { title: 'Rebound', project_id: strictTeam.project.id },
      })
      expect(task.status).toBe(201)
      const attempt = await until(async () => {
        const [a] = await strict.db.sql<{ error: string; response_status: number | null }[]>`
          select a.error, a.response_status
          from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id
          where d.webhook_id = ${hook?.id as string}
        `
        return a
      })
      expect(attempt?.error).toContain('destination refused')
      expect(attempt?.response_status).toBeNull()
      expect(rx.received).toHaveLength(0)
    } finally {
      rx.stop()
      await strict.close()
    }
  }, 60_000)

  it('connects to the address it checked, not to a second lookup of the name', async () => {
    const rx = receiver()
    try {
      const port = new URL(rx.url).port
      // `.invalid` never resolves (RFC 6761): the request can only arrive through the pin.
      const pinned = pinnedRequest(new URL(`http://rebind.invalid:${port}/hook?x=1`), '127.0.0.1')
      expect(pinned).toEqual({
        url: `http://127.0.0.1:${port}/hook?x=1`,
        host: `rebind.invalid:${port}`,
        tls: undefined,
      })
      const res = await fetch(pinned.url, { method: 'POST', headers: { host: pinned.host } })
      expect(res.status).toBe(200)
      expect(rx.received[0]?.headers.host).toBe(`rebind.invalid:${port}`)
      // https keeps the name for SNI and the certificate check; IPv6 addresses are bracketed.
      const secure = pinnedRequest(new URL('https://hooks.example.com/in'), '2606:4700::1')
      expect(secure.url).toBe('https://[2606:4700::1]/in')
      expect(secure.host).toBe('hooks.example.com')
      expect(secure.tls?.serverName).toBe('hooks.example.com')
    } finally {
      rx.stop()
    }
  })
})

describe('webhooks: delivery', () => {
  it('delivers each event once, signed as standardwebhooks verifies', async () => {
    const rx = receiver()
    try {
      const project = await createProjectFor()
      const hook = await createHook(rx.url, ['task.created'], project)
      const task = await newTask('Signed', project)
      await until(() => rx.received.length >= 1)
      await Bun.sleep(200)
      expect(rx.received).toHaveLength(1)
      const got = rx.received[0] as Received
      const payload = new Webhook(hook.secret).verify(got.body, got.headers) as Record<
        string,
        unknown
      >
      expect(payload).toMatchObject({ event: 'task.created', project_id: project })
      expect((payload.data as { task: { id: string } }).task.id).toBe(task.id)
      // The webhook-id is the event id itself, the payload's `id`, as a string.
      expect(got.headers['webhook-id']).toBe(String(payload.id))
      expect(got.headers['webhook-id']).toMatch(/^[1-9][0-9]*$/)
      // A wrong secret does not verify.
      expect(() =>
        new Webhook(`whsec_${btoa('x'.repeat(32))}`).verify(got.body, got.headers),
      ).toThrow()
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('carries the created task as POST answered it, byte for byte, whoever it is assigned to', async () => {
    const rx = receiver()
    try {
      const project = await createProjectFor()
      await server.request('POST', `/api/v1/projects/${project}/members`, {
        token: team.owner.access,
        body: { user_id: team.viewer.id, role: 'member' },
      })
      await createHook(rx.url, ['task.created'], project)
      // On PostgreSQL the first two are written in one statement whose SQL builds the event's
      // JSON (nobody to notify); the third, which notifies its assignee, in a transaction whose
      // server builds it. Either way the event must carry the same text as the answer.
      const bodies = [
        { title: 'Plain', project_id: project },
        {
          title: 'Quotes " and \\ back\nslash \u0001 \u2028 é 🦓',
          description: 'Tab\there, <b>bold</b>, 100% "quoted"',
          project_id: project,
          assignee_id: team.member.id,
          status: 'done',
          priority: 'urgent',
          due_date: '2031-02-03T04:05:06.789Z',
          estimated_hours: 7,
          tags: ['b', 'a', 'ü'],
        },
        { title: 'For someone else', project_id: project, assignee_id: team.viewer.id },
      ]
      const answers: { id: string }[] = []
      for (const body of bodies) {
        const res = await server.request('POST', '/api/v1/tasks', {
          token: team.member.access,
          body,
        })
        expect(res.status).toBe(201)
        answers.push(res.body as { id: string })
      }
      await until(() => rx.received.length >= bodies.length)
      for (const answer of answers) {
        const got = rx.received.find((r) => r.body.includes(`"id":"${answer.id}"`))
        expect(got).toBeDefined()
        const body = (got as Received).body
        const data = body.slice(body.indexOf(',"data":') + 8, body.lastIndexOf(',"at":'))
        expect(data).toBe(JSON.stringify({ task: answer, actor_id: team.member.id }))
      }
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('retries a failing receiver with the same webhook-id, and logs each attempt', async () => {
    const rx = receiver(3)
    try {
      const project = await createProjectFor()
      const hook = await createHook(rx.url, ['task.created'], project)
      await newTask('Flaky', project)
      await until(() => rx.received.length >= 4)
      await Bun.sleep(300)
      expect(rx.received).toHaveLength(4)
      expect(new Set(rx.received.map((r) => r.headers['webhook-id'])).size).toBe(1)
      for (const r of rx.received) new Webhook(hook.secret).verify(r.body, r.headers)
      const log = await until(async () => {
        const res = await server.request('GET', `${hooksOf(project)}/${hook.id}/deliveries`, {
          token: team.owner.access,
        })
        return res.body?.[0]?.status === 'succeeded' ? res : undefined
      })
      const delivery = log?.body[0]
      expect(delivery).toMatchObject({ status: 'succeeded', attempts: 4, response_status: 200 })
      expect(
        delivery.attempt_log.map((a: { response_status: number }) => a.response_status),
      ).toEqual([500, 500, 500, 200])
      expect(delivery.attempt_log[0].error).toBe('HTTP 500')
      // The response body is not kept beyond a short excerpt.
      const [row] = await server.db.sql<{ excerpt: string | null }[]>`
        select response_excerpt as excerpt from webhook_deliveries where id = ${delivery.id}
      `
      expect((row?.excerpt ?? '').length).toBeLessThanOrEqual(500)
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('pings, and redelivers with the same webhook-id', async () => {
    const rx = receiver()
    try {
      const project = await createProjectFor()
      const hook = await createHook(rx.url, ['task.created'], project)
      const base = `${hooksOf(project)}/${hook.id}`
      const ping = await server.request('POST', `${base}/ping`, { token: team.owner.access })
      expect(ping.status).toBe(202)
      await until(() => rx.received.length >= 1)
      const pinged = rx.received[0] as Received
      expect(JSON.parse(pinged.body).event).toBe('ping')
      // A ping has no event id: its own, which no event id (a number) can equal.
      expect(pinged.headers['webhook-id']).toMatch(/^ping_[0-9a-f-]{36}$/)
      expect(JSON.parse(pinged.body).id).toBe(pinged.headers['webhook-id'])
      const again = await server.request(
        'POST',
        `${base}/deliveries/${ping.body.delivery_id}/redeliver`,
        { token: team.owner.access },
      )
      expect(again.status).toBe(202)
      await until(() => rx.received.length >= 2)
      expect(rx.received[1]?.headers['webhook-id']).toBe(rx.received[0]?.headers['webhook-id'])
      expectProblemShape(
        await server.request('POST', `${base}/deliveries/${crypto.randomUUID()}/redeliver`, {
          token: team.owner.access,
        }),
        404,
      )
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('writes no delivery for a change that rolls back, and none for other events', async () => {
    const rx = receiver()
    try {
      const project = await createProjectFor()
      await createHook(rx.url, ['comment.created'], project)
      await newTask('Not wanted', project)
      // A refused change (validation) commits nothing, so there is nothing to deliver.
      const refused = await server.request('POST', '/api/v1/tasks', {
        token: team.member.access,
        body: { title: '', project_id: project },
      })
      expectProblemShape(refused, 422)
      await Bun.sleep(300)
      expect(rx.received).toHaveLength(0)
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('records a receiver that does not answer in time as a failed attempt (timeout)', async () => {
    // WEBHOOK_TIMEOUT_MS defaults to 10 s; this server's is 1 s.
    expect(testConfig().webhooks.timeoutMs).toBe(10_000)
    expect(server.config.webhooks.timeoutMs).toBe(1_000)
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let calls = 0
    const silent = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch() {
        calls += 1
        await held
        return new Response('too late')
      },
    })
    try {
      const project = await createProjectFor()
      const hook = await createHook(`http://127.0.0.1:${silent.port}/`, ['task.created'], project)
      await newTask('Unanswered', project)
      const log = await until(async () => {
        const res = await server.request('GET', `${hooksOf(project)}/${hook.id}/deliveries`, {
          token: team.owner.access,
        })
        return res.body?.[0]?.attempt_log?.length >= 1 ? res : undefined
      })
      const delivery = log?.body[0]
      expect(delivery.status).toBe('retrying')
      expect(delivery.attempt_log[0]).toMatchObject({
        response_status: null,
        error: 'timed out after 1000 ms',
      })
      expect(calls).toBeGreaterThanOrEqual(1)
    } finally {
      release()
      silent.stop(true)
    }
  }, 30_000)

  it('does not follow redirects: a 3xx is a failed attempt, retried', async () => {
    let followed = 0
    const target = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch() {
        followed += 1
        return new Response('ok')
      },
    })
    const hits: number[] = []
    const redirecting = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch() {
        hits.push(Date.now())
        return Response.redirect(`http://127.0.0.1:${target.port}/`, 302)
      },
    })
    try {
      const project = await createProjectFor()
      const hook = await createHook(
        `http://127.0.0.1:${redirecting.port}/`,
        ['task.created'],
        project,
      )
      await newTask('Redirected', project)
      await until(() => hits.length >= 2)
      expect(followed).toBe(0)
      const log = await server.request('GET', `${hooksOf(project)}/${hook.id}/deliveries`, {
        token: team.owner.access,
      })
      expect(log.body[0].attempt_log[0]).toMatchObject({ response_status: 302, error: 'HTTP 302' })
    } finally {
      target.stop(true)
      redirecting.stop(true)
    }
  }, 30_000)

  it('marks a delivery failed after 24 hours, and stops a webhook after 20 failures in a row', async () => {
    const rx = receiver(1_000)
    try {
      const project = await createProjectFor()
      const hook = await createHook(rx.url, ['task.created'], project)
      // As if the webhook had already failed 19 times and this delivery were a day old.
      await server.db.sql`update webhooks set failures_in_a_row = 19 where id = ${hook.id}`
      await server.db.sql`
        insert into webhook_deliveries (webhook_id, message_id, event, payload, created_at)
        values (${hook.id}, 'old_1', 'ping', '{}', now() - interval '25 hours')
      `
      const done = await until(async () => {
        const [row] = await server.db.sql<{ status: string; attempts: number }[]>`
          select status, attempts from webhook_deliveries where message_id = 'old_1'
        `
        return row?.status === 'failed' ? row : undefined
      })
      expect(done).toMatchObject({ status: 'failed', attempts: 1 })
      // The deactivation is its own transaction, right after the attempt is recorded.
      const read = await until(async () => {
        const res = await server.request('GET', `${hooksOf(project)}/${hook.id}`, {
          token: team.owner.access,
        })
        return res.body?.active === false ? res : undefined
      })
      expect(read?.body.active).toBe(false)
      const notes = await server.request('GET', '/api/v1/notifications', {
        token: team.owner.access,
      })
      expect(
        notes.body.data.some(
          (n: { type: string; entity_id: string }) =>
            n.type === 'webhook_disabled' && n.entity_id === hook.id,
        ),
      ).toBe(true)
      // Inactive: a new event queues nothing for it.
      await newTask('After deactivation', project)
      const [row] = await server.db.sql<{ n: number }[]>`
        select count(*)::int as n from webhook_deliveries where webhook_id = ${hook.id} and event_id is not null
      `
      expect(row?.n).toBe(0)
    } finally {
      rx.stop()
    }
  }, 30_000)

  it('loses nothing across a restart between the change and the delivery', async () => {
    const rx = receiver()
    // An instance whose worker looks once, at start, and then not for a minute.
    const sleepy = await startServer({ ...FAST, WEBHOOK_POLL_MS: '60000' })
    try {
      const owner = await createTeam(sleepy)
      const hook = await sleepy.request('POST', hooksOf(owner.project.id), {
        token: owner.owner.access,
        body: { url: rx.url, events: ['task.created'] },
      })
      expect(hook.status).toBe(201)
      const task = await sleepy.request('POST', '/api/v1/tasks', {
        token: owner.owner.access,
        body: { title: 'Before the restart', project_id: owner.project.id },
      })
      expect(task.status).toBe(201)
      await Bun.sleep(200)
      expect(rx.received).toHaveLength(0)
      const [queued] = await sleepy.db.sql<{ status: string }[]>`
        select status from webhook_deliveries where webhook_id = ${hook.body.id}
      `
      expect(queued?.status).toBe('pending')
      // Stop the server, and start another process's worth of app on the same database.
      await sleepy.app.stop(true)
      const config = { ...sleepy.config, webhooks: { ...sleepy.config.webhooks, pollMs: 25 } }
      const restarted = await createApp({
        config,
        db: sleepy.db,
        log: createLogger('silent'),
        jwtSecret: sleepy.config.jwtSecret as string,
      })
      restarted.listen({ hostname: '127.0.0.1', port: 0 })
      try {
        await until(() => rx.received.length >= 1)
        await Bun.sleep(200)
        expect(rx.received).toHaveLength(1)
        const body = new Webhook(hook.body.secret).verify(
          (rx.received[0] as Received).body,
          (rx.received[0] as Received).headers,
        ) as { data: { task: { id: string } } }
        expect(body.data.task.id).toBe(task.body.id)
      } finally {
        await restarted.stop(true)
      }
    } finally {
      await sleepy.db.close()
      rx.stop()
    }
  }, 60_000)

  it('delivers each event exactly once with two instances on one database', async () => {
    const rx = receiver()
    const second = await createApp({
      config: server.config,
      db: server.db,
      log: createLogger('silent'),
      jwtSecret: server.config.jwtSecret as string,
    })
    second.listen({ hostname: '127.0.0.1', port: 0 })
    try {
      const project = await createProjectFor()
      await createHook(rx.url, ['task.created'], project)
      const count = 20
      await Promise.all(Array.from({ length: count }, (_, i) => newTask(`Pair ${i}`, project)))
      await until(() => rx.received.length >= count, 20_000)
      await Bun.sleep(500)
      const ids = rx.received.map((r) => r.headers['webhook-id'])
      expect(ids).toHaveLength(count)
      expect(new Set(ids).size).toBe(count)
      const [row] = await server.db.sql<{ n: number }[]>`
        select count(*)::int as n from webhook_attempts a
        join webhook_deliveries d on d.id = a.delivery_id
        join webhooks w on w.id = d.webhook_id
        where w.project_id = ${project}
      `
      expect(row?.n).toBe(count)
    } finally {
      await second.stop(true)
      rx.stop()
    }
  }, 60_000)
})

async function createProjectFor() {
  const res = await server.request('POST', '/api/v1/projects', {
    token: team.owner.access,
    body: { name: `Hooks ${crypto.randomUUID().slice(0, 8)}` },
  })
  const project = res.body.id as string
  await server.request('POST', `/api/v1/projects/${project}/members`, {
    token: team.owner.access,
    body: { user_id: team.member.id, role: 'member' },
  })
  return project
}
