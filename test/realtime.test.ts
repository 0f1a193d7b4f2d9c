import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { Parser } from '@asyncapi/parser'
import { SignJWT } from 'jose'
import { EVENT_NAMES } from '../src/realtime/events'
import { pruneEvents } from '../src/realtime/queries'
import { createProject } from './factories'
import {
  captureLogger,
  expectProblemShape,
  JWT_SECRET,
  registerUser,
  startServer,
  type TestServer,
} from './helpers'
import { createTeam, type Team } from './team'
import { connectWs, type Frame, roundTrip, subscribedClient, type WsClient } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let team: Team
const open: WsClient[] = []

beforeAll(async () => {
  server = await startServer()
  team = await createTeam(server)
}, 60_000)
afterAll(async () => {
  for (const client of open) client.close()
  await server.close()
}, 30_000)

const api = (method: string, path: string, token?: string, body?: unknown) =>
  server.request(method, `/api/v1${path}`, { token, body })

/** Keeps the client to close it after the file. */
const kept = (client: WsClient) => {
  open.push(client)
  return client
}

const subscribe = async (token: string, projectId: string, since?: number) =>
  kept(await subscribedClient(server, token, projectId, since))

/** The headers of a WebSocket upgrade, sent with fetch so the HTTP answer can be read. */
const UPGRADE = {
  upgrade: 'websocket',
  connection: 'Upgrade',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'sec-websocket-version': '13',
}
const upgradeWith = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/ws`, { headers: { ...UPGRADE, ...headers } })

async function newTask(token: string, projectId: string, fields: Record<string, unknown> = {}) {
  const res = await api('POST', '/tasks', token, {
    title: 'A task',
    project_id: projectId,
    ...fields,
  })
  if (res.status !== 201) throw new Error(`task create: ${res.status} ${res.text}`)
  return res.body as { id: string; title: string }
}

const isEvent = (name: string) => (f: Frame) => f.type === 'event' && f.event === name
const events = (client: WsClient) => client.frames.filter((f) => f.type === 'event')

describe('GET /ws (the upgrade)', () => {
  it('welcomes a client authenticated with a bearer header', async () => {
    const client = kept(await connectWs(server, team.owner.access))
    expect(await client.next()).toEqual({ type: 'welcome', user_id: team.owner.id })
  }, 30_000)

  it('accepts access_token in the query string and never logs it', async () => {
    const { logger, lines } = captureLogger()
    const logged = await startServer({ LOG_LEVEL: 'debug' }, logger)
    try {
      const user = await registerUser(logged)
      const client = await connectWs(logged, user.access, 'query')
      expect(await client.next()).toEqual({ type: 'welcome', user_id: user.id })
      const refused = await upgradeWith(logged.url.replace('/ws', ''), {})
      expect(refused.status).toBe(401)
      await fetch(`${logged.url}/ws?access_token=${user.access}x`, { headers: UPGRADE })
      client.close()
      await client.closed
      await Bun.sleep(50)
      const text = JSON.stringify(lines)
      expect(text).not.toContain(user.access)
      expect(text).not.toContain('access_token')
      expect(lines.some((l) => l.msg === 'request' && l.path === '/ws')).toBe(true)
    } finally {
      await logged.close()
    }
  }, 30_000)

  it('refuses a missing, malformed, expired or revoked token with 401 and never upgrades', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await new SignJWT({ sid: crypto.randomUUID(), jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setIssuer('taskapi')
      .setAudience('taskapi')
      .setSubject(team.owner.id)
      .setIssuedAt(now - 120)
      .setExpirationTime(now - 60)
      .sign(new TextEncoder().encode(JWT_SECRET))
    const revoked = await registerUser(server)
    expect((await api('POST', '/auth/logout', revoked.access)).status).toBe(204)
    for (const token of [undefined, 'garbage', expired, revoked.access]) {
      const res = await upgradeWith(server.url, token ? { authorization: `Bearer ${token}` } : {})
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toStartWith('application/problem+json')
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
      await expect(connectWs(server, token)).rejects.toThrow()
    }
    const query = await fetch(`${server.url}/ws?access_token=${expired}`, { headers: UPGRADE })
    expect(query.status).toBe(401)
  }, 30_000)

  it('answers 426 to a request that is not an upgrade', async () => {
    const res = await server.request('GET', '/ws', { token: team.owner.access })
    expectProblemShape(res, 426)
  }, 30_000)
})

describe('client messages', () => {
  it('answers every invalid message with an error frame and stays usable', async () => {
    const client = kept(await connectWs(server, team.member.access))
    await client.next((f) => f.type === 'welcome')
    const invalid = [
      'not json',
      '[]',
      'null',
      JSON.stringify({ type: 'dance' }),
      JSON.stringify({ type: 'subscribe', topic: 'project:nope' }),
      JSON.stringify({ type: 'subscribe', topic: `user:${team.member.id}` }),
      JSON.stringify({ type: 'subscribe', topic: `project:${team.project.id}`, since: -1 }),
      JSON.stringify({ type: 'subscribe', topic: `project:${team.project.id}`, since: 'x' }),
    ]
    for (const message of invalid) {
      client.send(message)
      const frame = await client.next()
      expect(frame.type).toBe('error')
      expect(frame.code).toBe('invalid_message')
      expect(JSON.stringify(frame)).not.toContain('dance')
    }
    client.ws.send(new Uint8Array([1, 2, 3]))
    expect((await client.next()).code).toBe('invalid_message')
    client.send({ type: 'ping' })
    expect(await client.next()).toEqual({ type: 'pong' })
    client.send({ type: 'subscribe', topic: `project:${team.project.id}` })
    expect(await client.next()).toEqual({ type: 'subscribed', topic: `project:${team.project.id}` })
  }, 30_000)

  it('refuses a project the caller is not a member of, and one that does not exist', async () => {
    const client = kept(await connectWs(server, team.outsider.access))
    await client.next((f) => f.type === 'welcome')
    client.send({ type: 'subscribe', topic: `project:${team.project.id}` })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'forbidden' })
    client.send({ type: 'subscribe', topic: `project:${crypto.randomUUID()}` })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'not_found' })
    await newTask(team.owner.access, team.project.id)
    await roundTrip(client)
    expect(events(client)).toEqual([])
  }, 30_000)

  it('lets an admin who is not a member subscribe (admins pass every project check)', async () => {
    const client = await subscribe(team.admin.access, team.project.id)
    await newTask(team.owner.access, team.project.id, { title: 'Seen by the admin' })
    expect((await client.next(isEvent('task.created'))).data.task.title).toBe('Seen by the admin')
  }, 30_000)

  it('takes a project id in upper case as the same topic', async () => {
    const client = kept(await connectWs(server, team.viewer.access))
    await client.next()
    client.send({ type: 'subscribe', topic: `project:${team.project.id.toUpperCase()}` })
    expect(await client.next()).toEqual({ type: 'subscribed', topic: `project:${team.project.id}` })
    await newTask(team.owner.access, team.project.id, { title: 'Upper' })
    expect((await client.next(isEvent('task.created'))).data.task.title).toBe('Upper')
  }, 30_000)

  it('stops sending a topic after unsubscribe', async () => {
    const client = await subscribe(team.viewer.access, team.project.id)
    client.send({ type: 'unsubscribe', topic: `project:${team.project.id}` })
    await roundTrip(client)
    await newTask(team.owner.access, team.project.id)
    await roundTrip(client)
    expect(events(client)).toEqual([])
  }, 30_000)
})

describe('events', () => {
  it('delivers every event type with its payload, ids growing, to the actor’s own socket too', async () => {
    const owner = team.owner
    const project = await createProject(server, owner, [[team.member, 'member']])
    const watcher = await subscribe(owner.access, project.id)
    const task = await newTask(owner.access, project.id, { title: 'First' })
    const created = await watcher.next(isEvent('task.created'))
    expect(created).toMatchObject({
      type: 'event',
      topic: `project:${project.id}`,
      data: { task: { id: task.id, title: 'First', project_id: project.id }, actor_id: owner.id },
    })
    expect(typeof created.id).toBe('number')
    expect(new Date(created.at).toISOString()).toBe(created.at)

    await api('PATCH', `/tasks/${task.id}`, owner.access, { title: 'Second' })
    expect((await watcher.next(isEvent('task.updated'))).data).toMatchObject({
      task: { id: task.id, title: 'Second' },
      changes: { title: { old: 'First', new: 'Second' } },
    })
    await api('PUT', `/tasks/${task.id}/assign`, owner.access, { assignee_id: team.member.id })
    expect((await watcher.next(isEvent('task.assigned'))).data).toMatchObject({
      task: { assignee_id: team.member.id },
      changes: { assignee_id: { old: null, new: team.member.id } },
    })
    await api('PUT', `/tasks/${task.id}/status`, owner.access, { status: 'done' })
    expect((await watcher.next(isEvent('task.status_changed'))).data).toMatchObject({
      task: { status: 'done' },
      changes: { status: { old: 'todo', new: 'done' } },
    })
    await api('POST', `/tasks/${task.id}/comments`, team.member.access, { content: 'Looks good' })
    expect((await watcher.next(isEvent('comment.created'))).data).toMatchObject({
      comment: { content: 'Looks good', user_id: team.member.id },
      task_id: task.id,
      actor_id: team.member.id,
    })
    await api('POST', `/projects/${project.id}/members`, owner.access, {
      user_id: team.viewer.id,
      role: 'viewer',
    })
    expect((await watcher.next(isEvent('member.added'))).data).toMatchObject({
      member: { user_id: team.viewer.id, role: 'viewer' },
    })
    await api('DELETE', `/projects/${project.id}/members/${team.viewer.id}`, owner.access)
    expect((await watcher.next(isEvent('member.removed'))).data).toMatchObject({
      user_id: team.viewer.id,
      role: 'viewer',
      left: false,
    })
    await api('PATCH', `/projects/${project.id}`, owner.access, { name: 'Renamed' })
    expect((await watcher.next(isEvent('project.updated'))).data).toMatchObject({
      project: { id: project.id, name: 'Renamed' },
      changes: { name: { new: 'Renamed' } },
    })
    await api('DELETE', `/tasks/${task.id}`, owner.access)
    expect((await watcher.next(isEvent('task.deleted'))).data).toMatchObject({
      task_id: task.id,
      title: 'Second',
    })
    const seen = events(watcher)
    expect(new Set(seen.map((f) => f.event))).toEqual(new Set(EVENT_NAMES))
    const ids = seen.map((f) => f.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(new Set(ids).size).toBe(ids.length)
  }, 30_000)

  it('writes nothing and announces nothing for a change that fails', async () => {
    const watcher = await subscribe(team.owner.access, team.project.id)
    const res = await api('POST', '/tasks', team.viewer.access, {
      title: 'Not allowed',
      project_id: team.project.id,
    })
    expect(res.status).toBe(403)
    const bad = await api('POST', '/tasks', team.owner.access, {
      title: 'Bad assignee',
      project_id: team.project.id,
      assignee_id: team.outsider.id,
    })
    expect(bad.status).toBe(422)
    await roundTrip(watcher)
    expect(events(watcher)).toEqual([])
  }, 30_000)

  it('pushes the assignee’s notification live, and none to the actor', async () => {
    const assignee = kept(await connectWs(server, team.member.access))
    const actor = kept(await connectWs(server, team.owner.access))
    await Promise.all([assignee.next(), actor.next()])
    const task = await newTask(team.owner.access, team.project.id, { title: 'For you' })
    await api('PUT', `/tasks/${task.id}/assign`, team.owner.access, { assignee_id: team.member.id })
    const pushed = await assignee.next((f) => f.type === 'notification')
    expect(pushed.data).toMatchObject({
      type: 'task_assigned',
      entity_type: 'task',
      entity_id: task.id,
      is_read: false,
    })
    expect(pushed.data.title).toContain('assigned')
    expect(pushed.data.user_id).toBeUndefined()
    const stored = await api('GET', '/notifications', team.member.access)
    expect(stored.body.data.map((n: { id: string }) => n.id)).toContain(pushed.data.id)
    await roundTrip(actor)
    expect(actor.frames.filter((f) => f.type === 'notification')).toEqual([])
  }, 30_000)

  it('pushes membership and mention notifications live', async () => {
    const newcomer = await registerUser(server)
    const socket = kept(await connectWs(server, newcomer.access))
    await socket.next()
    const project = await createProject(server, team.owner, [[newcomer, 'member']])
    expect((await socket.next((f) => f.type === 'notification')).data).toMatchObject({
      type: 'project_member_added',
      entity_type: 'project',
      entity_id: project.id,
    })
    const task = await newTask(team.owner.access, project.id, { title: 'Mentions' })
    const username = newcomer.input.username
    const res = await api('POST', `/tasks/${task.id}/comments`, team.owner.access, {
      content: `@${username} please look`,
    })
    expect(res.status).toBe(201)
    expect((await socket.next((f) => f.type === 'notification')).data).toMatchObject({
      type: 'mentioned',
      entity_id: task.id,
    })
  }, 30_000)

  it('stops a removed member’s events at once, while other members go on receiving', async () => {
    const leaver = await registerUser(server)
    const project = await createProject(server, team.owner, [
      [leaver, 'member'],
      [team.viewer, 'viewer'],
    ])
    const removed = await subscribe(leaver.access, project.id)
    const stays = await subscribe(team.viewer.access, project.id)
    await api('DELETE', `/projects/${project.id}/members/${leaver.id}`, team.owner.access)
    await removed.next(isEvent('member.removed'))
    expect(await removed.next()).toMatchObject({ type: 'error', code: 'forbidden' })
    await newTask(team.owner.access, project.id, { title: 'After the removal' })
    await stays.next(isEvent('task.created'))
    await roundTrip(removed)
    // Its own addition may arrive just after subscribing; nothing arrives after the removal.
    expect(
      events(removed)
        .map((f) => f.event)
        .at(-1),
    ).toBe('member.removed')
    expect(events(removed).map((f) => f.event)).not.toContain('task.created')
    removed.send({ type: 'subscribe', topic: `project:${project.id}` })
    expect(await removed.next((f) => f.type === 'error')).toMatchObject({ code: 'forbidden' })
  }, 30_000)
})

describe('sessions that end', () => {
  it('closes the socket with 4401 session_ended on logout', async () => {
    const user = await registerUser(server)
    const client = await connectWs(server, user.access)
    await client.next()
    expect((await api('POST', '/auth/logout', user.access)).status).toBe(204)
    expect(await client.closed).toEqual({ code: 4401, reason: 'session_ended' })
  }, 30_000)

  it('closes the other sessions’ sockets on a password change, and keeps the current one', async () => {
    const user = await registerUser(server)
    const login = await api('POST', '/auth/login', undefined, {
      email: user.input.email,
      password: user.input.password,
    })
    const other = await connectWs(server, login.body.access_token)
    const current = kept(await connectWs(server, user.access))
    await Promise.all([other.next(), current.next()])
    const res = await api('PUT', '/users/me/password', user.access, {
      current_password: user.input.password,
      new_password: 'another horse battery',
    })
    expect(res.status).toBe(204)
    expect(await other.closed).toEqual({ code: 4401, reason: 'session_ended' })
    await roundTrip(current)
  }, 30_000)

  it('closes a deactivated user’s sockets, and keeps those of a user whose roles change', async () => {
    const user = await registerUser(server)
    const promoted = await registerUser(server)
    const client = await connectWs(server, user.access)
    const staying = kept(await connectWs(server, promoted.access))
    await Promise.all([client.next(), staying.next()])
    const changed = await api('PATCH', `/admin/users/${promoted.id}`, team.admin.access, {
      roles: ['manager'],
    })
    expect(changed.status).toBe(200)
    const res = await api('PATCH', `/admin/users/${user.id}`, team.admin.access, {
      is_active: false,
    })
    expect(res.status).toBe(200)
    expect(await client.closed).toEqual({ code: 4401, reason: 'session_ended' })
    await roundTrip(staying)
  }, 30_000)
})

describe('replay', () => {
  it('gives a reconnecting client exactly the 50 changes it missed, in order, then live ones', async () => {
    const project = await createProject(server, team.owner, [[team.member, 'member']])
    const first = await subscribe(team.member.access, project.id)
    const task = await newTask(team.owner.access, project.id, { title: 'Edit 0' })
    const last = (await first.next(isEvent('task.created'))).id as number
    first.close()
    await first.closed
    for (let i = 1; i <= 50; i++)
      expect(
        (await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: `Edit ${i}` })).status,
      ).toBe(200)
    const again = await subscribe(team.member.access, project.id, last)
    const replayed: Frame[] = []
    for (let i = 0; i < 50; i++) replayed.push(await again.next((f) => f.type === 'event'))
    expect(replayed.map((f) => f.data.task.title)).toEqual(
      Array.from({ length: 50 }, (_, i) => `Edit ${i + 1}`),
    )
    const ids = replayed.map((f) => f.id as number)
    expect(ids[0]).toBeGreaterThan(last)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: 'Live' })
    const live = await again.next((f) => f.type === 'event')
    expect(live.data.task.title).toBe('Live')
    expect(live.id).toBeGreaterThan(ids.at(-1) as number)
    await roundTrip(again)
    expect(events(again).map((f) => f.id)).toEqual([...ids, live.id])

    // The same 50 through HTTP, in pages, with the same ids.
    const viaHttp: number[] = []
    let since = last
    for (;;) {
      const page = await api(
        'GET',
        `/events?project_id=${project.id}&since=${since}&limit=20`,
        team.member.access,
      )
      expect(page.status).toBe(200)
      if (page.body.data.length === 0) break
      for (const event of page.body.data) {
        expect(event.topic).toBe(`project:${project.id}`)
        viaHttp.push(event.id)
      }
      since = page.body.next_since
    }
    expect(viaHttp).toEqual([...ids, live.id])
  }, 30_000)

  it('has no gap and no duplicate at the seam when changes land during the replay', async () => {
    const project = await createProject(server, team.owner)
    const task = await newTask(team.owner.access, project.id, { title: 'Seam 0' })
    for (let i = 1; i <= 30; i++)
      await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: `Seam ${i}` })
    const client = kept(await connectWs(server, team.owner.access))
    await client.next()
    const writes = Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: `During ${i}` }),
      ),
    )
    client.send({ type: 'subscribe', topic: `project:${project.id}`, since: 0 })
    await writes
    const stored = await server.db.sql<{ id: string }[]>`
      select id from events where project_id = ${project.id} order by id
    `
    for (let i = 0; i < stored.length; i++) await client.next((f) => f.type === 'event')
    await roundTrip(client)
    expect(events(client).map((f) => f.id)).toEqual(stored.map((r) => Number(r.id)))
  }, 30_000)

  it('says replay_gap when since is older than the events kept, over the socket and over HTTP', async () => {
    const project = await createProject(server, team.owner)
    const task = await newTask(team.owner.access, project.id, { title: 'Old 0' })
    for (let i = 1; i < 5; i++)
      await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: `Old ${i}` })
    await server.db.sql`
      update events set at = now() - interval '3 days' where project_id = ${project.id}
    `
    expect(await pruneEvents(server.db.sql, 24, 2)).toBeGreaterThanOrEqual(3)
    const kept2 = await api('GET', `/events?project_id=${project.id}`, team.owner.access)
    expect(kept2.body.data.map((e: Frame) => e.data.task.title)).toEqual(['Old 3', 'Old 4'])
    const gap = await api('GET', `/events?project_id=${project.id}&since=0`, team.owner.access)
    expectProblemShape(gap, 410)
    expect(gap.body.code).toBe('replay_gap')
    const client = kept(await connectWs(server, team.owner.access))
    await client.next()
    client.send({ type: 'subscribe', topic: `project:${project.id}`, since: 0 })
    expect(await client.next()).toMatchObject({ type: 'subscribed' })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'replay_gap' })
    await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: 'After the gap' })
    expect((await client.next(isEvent('task.updated'))).data.task.title).toBe('After the gap')
  }, 30_000)

  it('keeps recent events and the last ones of each project, whichever keeps more', async () => {
    const busy = await createProject(server, team.owner)
    const task = await newTask(team.owner.access, busy.id)
    for (let i = 0; i < 4; i++)
      await api('PATCH', `/tasks/${task.id}`, team.owner.access, { title: `Recent ${i}` })
    const count = async () =>
      Number(
        (
          await server.db.sql<{ n: string }[]>`
          select count(*) as n from events where project_id = ${busy.id}
        `
        )[0]?.n,
      )
    expect(await count()).toBe(5)
    await pruneEvents(server.db.sql, 24, 1)
    expect(await count()).toBe(5)
  }, 30_000)
})

describe('GET /api/v1/events', () => {
  it('is for members only, and validates its query', async () => {
    const url = `/events?project_id=${team.project.id}`
    expectProblemShape(await api('GET', url), 401)
    expectProblemShape(await api('GET', url, team.outsider.access), 403)
    expectProblemShape(
      await api('GET', `/events?project_id=${crypto.randomUUID()}`, team.owner.access),
      404,
    )
    for (const query of [
      '',
      `${url}&limit=0`,
      `${url}&limit=1001`,
      `${url}&since=-1`,
      `${url}&since=x`,
    ])
      expectProblemShape(await api('GET', query || '/events', team.owner.access), 422)
    const res = await api('GET', url, team.viewer.access)
    expect(res.status).toBe(200)
    expect(res.body.data.length).toBeGreaterThan(0)
    expect(res.body.next_since).toBe(res.body.data.at(-1).id)
    const after = await api('GET', `${url}&since=${res.body.next_since + 1000}`, team.viewer.access)
    expect(after.body).toEqual({ data: [], next_since: res.body.next_since + 1000 })
  }, 30_000)
})

describe('limits', () => {
  let limited: TestServer
  beforeAll(async () => {
    limited = await startServer({
      WS_MAX_SUBSCRIPTIONS: '1',
      WS_MAX_SOCKETS_PER_USER: '2',
      WS_MAX_PAYLOAD_BYTES: '512',
      WS_BACKPRESSURE_LIMIT_BYTES: '65536',
    })
  }, 60_000)
  afterAll(() => limited.close(), 30_000)

  it('caps subscriptions per socket and sockets per user', async () => {
    const user = await registerUser(limited)
    const [a, b] = [await createProject(limited, user), await createProject(limited, user)]
    const client = await subscribedClient(limited, user.access, a.id)
    client.send({ type: 'subscribe', topic: `project:${b.id}` })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'subscription_limit' })
    const second = await connectWs(limited, user.access)
    const third = await upgradeWith(limited.url, { authorization: `Bearer ${user.access}` })
    expect(third.status).toBe(429)
    expect(third.headers.get('retry-after')).toBeTruthy()
    client.close()
    second.close()
  }, 30_000)

  it('drops messages past 20 a second with one rate_limited error, and closes a flood', async () => {
    const user = await registerUser(limited)
    const client = await connectWs(limited, user.access)
    await client.next()
    for (let i = 0; i < 25; i++) client.send({ type: 'ping' })
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'rate_limited' })
    await Bun.sleep(1_100)
    await roundTrip(client)
    const pongs = client.frames.filter((f) => f.type === 'pong').length
    expect(pongs).toBe(21)
    for (let i = 0; i < 150; i++) client.send({ type: 'ping' })
    expect(await client.closed).toEqual({ code: 1008, reason: 'too_many_messages' })
  }, 30_000)

  it('closes a socket that sends a message over WS_MAX_PAYLOAD_BYTES', async () => {
    const user = await registerUser(limited)
    const client = await connectWs(limited, user.access)
    await client.next()
    client.send({ type: 'ping', padding: 'x'.repeat(1_000) })
    expect((await client.closed).code).toBe(1009)
  }, 30_000)

  it('closes a slow consumer instead of buffering for it without bound', async () => {
    const user = await registerUser(limited)
    const project = await createProject(limited, user)
    // A client in another process that subscribes, then stops reading (its thread sleeps).
    const script = `
      const ws = new WebSocket(process.env.WS_URL, { headers: { authorization: 'Bearer ' + process.env.TOKEN } })
      ws.onmessage = (m) => {
        const frame = JSON.parse(String(m.data))
        if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'subscribe', topic: process.env.TOPIC }))
        if (frame.type === 'subscribed') {
          console.log('ready')
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000)
          process.exit(0)
        }
      }`
    const child = Bun.spawn(['bun', '-e', script], {
      env: {
        PATH: process.env.PATH ?? '',
        WS_URL: `${limited.url.replace('http', 'ws')}/ws`,
        TOKEN: user.access,
        TOPIC: `project:${project.id}`,
      },
      stdout: 'pipe',
    })
    try {
      const reader = child.stdout.getReader()
      const { value } = await reader.read()
      expect(new TextDecoder().decode(value)).toContain('ready')
      const hub = limited.app.decorator.realtime
      expect(hub.socketCount(user.id)).toBe(1)
      const description = 'd'.repeat(100_000)
      // Up to 20 MB of events, far past what the kernel's socket buffers hold.
      for (let i = 0; i < 200 && hub.socketCount(user.id) > 0; i++)
        await limited.request('POST', '/api/v1/tasks', {
          token: user.access,
          body: { title: `Big ${i}`, project_id: project.id, description },
        })
      for (let i = 0; i < 100 && hub.socketCount(user.id) > 0; i++) await Bun.sleep(20)
      expect(hub.socketCount(user.id)).toBe(0)
    } finally {
      child.kill()
    }
  }, 60_000)
})

describe('token expiry', () => {
  it('closes the socket with 4401 token_expired when its access token expires', async () => {
    const short = await startServer({ ACCESS_TOKEN_TTL: '1' })
    try {
      const user = await registerUser(short)
      const client = await connectWs(short, user.access)
      await client.next()
      const started = Date.now()
      expect(await client.closed).toEqual({ code: 4401, reason: 'token_expired' })
      expect(Date.now() - started).toBeLessThan(3_000)
    } finally {
      await short.close()
    }
  }, 30_000)
})

describe('AsyncAPI', () => {
  it('serves an AsyncAPI 3 document that the parser accepts without errors', async () => {
    const res = await fetch(`${server.url}/docs/asyncapi.json`)
    expect(res.status).toBe(200)
    const text = await res.text()
    const { document, diagnostics } = await new Parser().parse(text)
    expect(diagnostics.filter((d) => d.severity === 0).map((d) => d.message)).toEqual([])
    expect(document).toBeDefined()
    const names =
      document
        ?.messages()
        .all()
        .map((m) => m.name()) ?? []
    for (const name of [
      ...EVENT_NAMES,
      'subscribe',
      'unsubscribe',
      'ping',
      'welcome',
      'subscribed',
      'notification',
      'pong',
      'error',
    ])
      expect(names).toContain(name)
    const openapi = (await (await fetch(`${server.url}/docs/json`)).json()) as {
      info: { description: string }
    }
    expect(openapi.info.description).toContain('/docs/asyncapi.json')
  }, 30_000)
})
