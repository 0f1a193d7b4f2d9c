import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject } from './factories'
import { registerUser, startServer, type TestServer } from './helpers'
import { connectWs, type Frame, roundTrip, type WsClient } from './ws'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let admin: Awaited<ReturnType<typeof registerUser>>
beforeAll(async () => {
  server = await startServer()
  // The first account of the database is the admin.
  admin = await registerUser(server)
}, 60_000)
afterAll(async () => {
  await server.close()
}, 30_000)

const topicOf = (projectId: string) => `project:${projectId}`
const eventsOf = (client: WsClient, projectId: string) =>
  client.frames.filter((f: Frame) => f.type === 'event' && f.topic === topicOf(projectId))

async function newTask(token: string, projectId: string, title: string) {
  const res = await server.request('POST', '/api/v1/tasks', {
    token,
    body: { project_id: projectId, title },
  })
  expect(res.status).toBe(201)
  return res.body
}

/** Waits until every frame the server sent for `ms` has arrived. */
async function settle(client: WsClient, ms = 300) {
  await Bun.sleep(ms)
  await roundTrip(client)
}

describe('subscriptions and membership', () => {
  it('stops a removed member’s events after a quick subscribe, unsubscribe, subscribe', async () => {
    const owner = await registerUser(server)
    const member = await registerUser(server)
    const project = await createProject(server, owner, [[member, 'member']])
    const client = await connectWs(server, member.access)
    await client.next((f) => f.type === 'welcome')
    const topic = topicOf(project.id)
    // The first subscribe is still being checked when the unsubscribe and the second arrive.
    client.send({ type: 'subscribe', topic })
    client.send({ type: 'unsubscribe', topic })
    client.send({ type: 'subscribe', topic })
    await settle(client)
    await newTask(owner.access, project.id, 'Before the removal')
    await client.next((f) => f.type === 'event' && f.event === 'task.created')

    const removed = await server.request(
      'DELETE',
      `/api/v1/projects/${project.id}/members/${member.id}`,
      { token: owner.access },
    )
    expect(removed.status).toBe(204)
    await client.next((f) => f.type === 'event' && f.event === 'member.removed')
    expect(await client.next()).toMatchObject({ type: 'error', code: 'forbidden' })
    await newTask(owner.access, project.id, 'After the removal')
    await settle(client)
    const titles = eventsOf(client, project.id)
      .filter((f: Frame) => f.event === 'task.created')
      .map((f: Frame) => f.data.task.title)
    expect(titles).toEqual(['Before the removal'])
    client.close()
  })
})

describe('notifications pushed to API tokens', () => {
  async function tokenFor(user: { access: string }, scopes: string[], projectIds?: string[]) {
    const res = await server.request('POST', '/api/v1/tokens', {
      token: user.access,
      body: { name: `ws ${scopes.join(' ')}`, scopes, project_ids: projectIds },
    })
    expect(res.status).toBe(201)
    return res.body.token as string
  }
  const notifications = (client: WsClient) =>
    client.frames.filter((f: Frame) => f.type === 'notification').map((f: Frame) => f.data)

  it('pushes none to a token without notifications:read, and only its projects’ to a limited one', async () => {
    const owner = await registerUser(server)
    const user = await registerUser(server)
    const inside = await createProject(server, owner, [[user, 'member']])
    const readOnly = await connectWs(server, await tokenFor(user, ['projects:read']))
    const limited = await connectWs(
      server,
      await tokenFor(user, ['projects:read', 'notifications:read'], [inside.id]),
    )
    const everywhere = await connectWs(
      server,
      await tokenFor(user, ['projects:read', 'notifications:read']),
    )
    const person = await connectWs(server, user.access)
    const clients = [readOnly, limited, everywhere, person]
    await Promise.all(clients.map((c) => c.next((f) => f.type === 'welcome')))

    // A notification about another project, then one about the token's project.
    const outside = await createProject(server, owner, [[user, 'member']])
    const task = await newTask(owner.access, inside.id, 'Yours now')
    const assigned = await server.request('PUT', `/api/v1/tasks/${task.id}/assign`, {
      token: owner.access,
      body: { assignee_id: user.id },
    })
    expect(assigned.status).toBe(200)

    for (const client of [everywhere, person]) {
      await client.next((f) => f.type === 'notification' && f.data.type === 'task_assigned')
      expect(notifications(client).map((n) => n.entity_id)).toEqual([outside.id, task.id])
    }
    await limited.next((f) => f.type === 'notification')
    await Promise.all(clients.map((c) => settle(c)))
    expect(notifications(limited).map((n) => n.type)).toEqual(['task_assigned'])
    expect(notifications(readOnly)).toEqual([])
    for (const client of clients) client.close()
  })
})

describe('global role changes', () => {
  it('stops the events of a project an admin followed without being a member once demoted', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const other = await createProject(server, owner)
    const user = await registerUser(server)
    const setRoles = async (roles: string[]) => {
      const res = await server.request('PATCH', `/api/v1/admin/users/${user.id}`, {
        token: admin.access,
        body: { roles },
      })
      expect(res.status).toBe(200)
    }
    await setRoles(['admin'])
    const client = await connectWs(server, user.access)
    await client.next((f) => f.type === 'welcome')
    client.send({ type: 'subscribe', topic: topicOf(project.id) })
    await client.next((f) => f.type === 'subscribed')
    await newTask(owner.access, project.id, 'Seen as an admin')
    await client.next((f) => f.type === 'event' && f.event === 'task.created')

    await setRoles(['developer'])
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'forbidden' })
    await newTask(owner.access, project.id, 'After the demotion')
    await settle(client)
    expect(eventsOf(client, project.id).map((f: Frame) => f.data.task?.title ?? f.event)).toEqual([
      'Seen as an admin',
    ])
    // The socket itself stays open and can follow what the user may still see.
    client.send({ type: 'subscribe', topic: topicOf(other.id) })
    expect(await client.next((f) => f.type === 'error' || f.type === 'subscribed')).toMatchObject({
      type: 'error',
      code: 'forbidden',
    })
    client.close()
  })
})

describe('hostile frames', () => {
  it('answers binary frames and odd `since` values with invalid_message, and survives a far-future since', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const client = await connectWs(server, owner.access)
    await client.next((f) => f.type === 'welcome')
    const topic = topicOf(project.id)
    client.ws.send(
      new Uint8Array([123, 34, 116, 121, 112, 101, 34, 58, 34, 112, 105, 110, 103, 34, 125]),
    )
    // Numbers only: numeric strings (which Elysia's t.Integer lets through for query strings)
    // reached the replay's SQL ('0x10' is no bigint) and failed as `internal`.
    const odd = [-1, 1.5, '10', '-1', '0x10', '1e3', '99999999999999999999', null, { gt: 1 }]
    for (const since of [...odd, Number.MAX_SAFE_INTEGER + 2])
      client.send({ type: 'subscribe', topic, since })
    for (let i = 0; i < odd.length + 2; i += 1)
      expect(await client.next((f) => f.type !== 'pong')).toMatchObject({
        type: 'error',
        code: 'invalid_message',
      })
    // A `since` beyond every id subscribes (nothing to replay) and live events follow.
    await Bun.sleep(1_000)
    client.send({ type: 'subscribe', topic, since: Number.MAX_SAFE_INTEGER })
    expect(await client.next()).toMatchObject({ type: 'subscribed', topic })
    // (An event committed before the socket joins the live topic counts as seen: its id is
    // below `since`.)
    await settle(client, 500)
    await newTask(owner.access, project.id, 'Live after a future since')
    expect(await client.next((f) => f.type === 'event')).toMatchObject({ event: 'task.created' })
    client.close()
  })
})

/**
 * Runs `during` while a transaction holds project_members exclusively: every subscribe's
 * membership check waits until it is released (on the embedded database, every query waits).
 */
async function whileMembershipLocked(during: () => Promise<void>) {
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let locked = () => {}
  const holding = new Promise<void>((resolve) => {
    locked = resolve
  })
  const tx = server.db.sql.begin(async (sql) => {
    await sql`lock table project_members in access exclusive mode`
    locked()
    await released
  })
  await holding
  try {
    await during()
  } finally {
    release()
    await tx
  }
}

const isAnswer = (f: Frame) => f.type === 'subscribed' || f.type === 'error'

describe('a second subscribe to a topic whose first is still being checked', () => {
  it('waits for the first and is refused like it to a non-member', async () => {
    const owner = await registerUser(server)
    const outsider = await registerUser(server)
    const project = await createProject(server, owner)
    const client = await connectWs(server, outsider.access)
    await client.next((f) => f.type === 'welcome')
    const topic = topicOf(project.id)
    await whileMembershipLocked(async () => {
      client.send({ type: 'subscribe', topic })
      client.send({ type: 'subscribe', topic })
      // The pong comes after whatever the server answered to both subscribes at once.
      await roundTrip(client)
      expect(client.frames.filter(isAnswer)).toEqual([])
    })
    expect(await client.next(isAnswer)).toMatchObject({ type: 'error', code: 'forbidden' })
    expect(await client.next(isAnswer)).toMatchObject({ type: 'error', code: 'forbidden' })
    await roundTrip(client)
    expect(client.frames.filter((f) => f.type === 'subscribed')).toEqual([])
    await newTask(owner.access, project.id, 'Not for outsiders')
    await settle(client)
    expect(eventsOf(client, project.id)).toEqual([])
    client.close()
  })

  it('answers both `subscribed` once the first is, and each event comes once', async () => {
    const owner = await registerUser(server)
    const member = await registerUser(server)
    const project = await createProject(server, owner, [[member, 'member']])
    const client = await connectWs(server, member.access)
    await client.next((f) => f.type === 'welcome')
    const topic = topicOf(project.id)
    await whileMembershipLocked(async () => {
      client.send({ type: 'subscribe', topic })
      client.send({ type: 'subscribe', topic })
      await roundTrip(client)
      expect(client.frames.filter(isAnswer)).toEqual([])
    })
    expect(await client.next(isAnswer)).toEqual({ type: 'subscribed', topic })
    expect(await client.next(isAnswer)).toEqual({ type: 'subscribed', topic })
    await newTask(owner.access, project.id, 'Once')
    await client.next((f) => f.type === 'event')
    await settle(client)
    expect(eventsOf(client, project.id)).toHaveLength(1)
    client.close()
  })
})
