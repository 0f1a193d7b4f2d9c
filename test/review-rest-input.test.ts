import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Values that pass the request schemas but that PostgreSQL cannot store or compare (year 0,
// a year past 9999 once the offset is applied, an offset over 15:59), tampered cursors and long
// tag lists: each is a 422 problem that changes nothing, never a 500.

type User = Awaited<ReturnType<typeof registerUser>>

let server: TestServer
let owner: User
let project: { id: string; name: string }

beforeAll(async () => {
  server = await startServer()
  await registerUser(server) // the admin
  owner = await registerUser(server)
  project = await createProject(server, owner)
}, 60_000)
afterAll(() => server.close(), 30_000)

// Timestamps the schema's `date-time` format accepts: PostgreSQL refuses the first three; the
// fourth it stores, but it reads back as 1950; the last two Date.parse reads in the server's own
// time zone (and the first of them may be the 1st of February or the 2nd of January).
const UNSTORABLE_TIMES = [
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+01:00',
  '9999-12-31T23:59:59-23:59',
  '0050-06-01T00:00:00Z',
  '01/02/2026',
  '2026-12-01 10:00',
]

async function taskCount() {
  const [row] = await server.db.sql<{ n: number }[]>`
    select count(*)::int as n from tasks where project_id = ${project.id}
  `
  return row?.n
}

async function newTask(body: Record<string, unknown> = {}) {
  const res = await server.request('POST', '/api/v1/tasks', {
    token: owner.access,
    body: { title: 'A task', project_id: project.id, ...body },
  })
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`)
  return res.body as { id: string; version: number; due_date: string | null }
}

describe('timestamps PostgreSQL cannot store', () => {
  it('answers 422 on /due_date to POST /tasks and creates nothing', async () => {
    const before = await taskCount()
    for (const due_date of UNSTORABLE_TIMES) {
      const res = await server.request('POST', '/api/v1/tasks', {
        token: owner.access,
        body: { title: 'Out of range', project_id: project.id, due_date },
      })
      expectProblemShape(res, 422)
      expect(res.body.errors).toEqual([{ path: '/due_date', message: expect.any(String) }])
    }
    expect(await taskCount()).toBe(before)
  })

  it('answers 422 on /due_date to PATCH /tasks/:id and leaves the task alone', async () => {
    const task = await newTask({ due_date: '2026-12-01T00:00:00Z' })
    for (const due_date of UNSTORABLE_TIMES) {
      const res = await server.request('PATCH', `/api/v1/tasks/${task.id}`, {
        token: owner.access,
        body: { due_date },
      })
      expectProblemShape(res, 422)
      expect(res.body.errors[0].path).toBe('/due_date')
    }
    const after = await server.request('GET', `/api/v1/tasks/${task.id}`, { token: owner.access })
    expect(after.body.version).toBe(task.version)
    expect(after.body.due_date).toBe('2026-12-01T00:00:00.000Z')
  })

  it('still takes the first and last storable instants', async () => {
    const first = await newTask({ due_date: '0100-01-01T00:00:00Z' })
    expect(first.due_date).toBe('0100-01-01T00:00:00.000Z')
    const day = await newTask({ due_date: '2026-12-01' })
    expect(day.due_date).toBe('2026-12-01T00:00:00.000Z')
    const last = await newTask({ due_date: '9999-12-31T23:59:59.999Z' })
    expect(last.due_date).toBe('9999-12-31T23:59:59.999Z')
  })

  it('answers 422 on /expires_at to POST /tokens and creates no token', async () => {
    for (const expires_at of UNSTORABLE_TIMES) {
      const res = await server.request('POST', '/api/v1/tokens', {
        token: owner.access,
        body: { name: 'far', scopes: ['tasks:read'], expires_at },
      })
      expectProblemShape(res, 422)
      expect(res.body.errors[0].path).toBe('/expires_at')
    }
    const list = await server.request('GET', '/api/v1/tokens', { token: owner.access })
    expect(list.body).toEqual([])
  })

  it('stores a token expiry given with an offset as the same instant', async () => {
    const res = await server.request('POST', '/api/v1/tokens', {
      token: owner.access,
      body: { name: 'offset', scopes: ['tasks:read'], expires_at: '2030-01-01T10:00:00+20:00' },
    })
    expect(res.status).toBe(201)
    expect(res.body.expires_at).toBe('2029-12-31T14:00:00.000Z')
    await server.request('DELETE', `/api/v1/tokens/${res.body.id}`, { token: owner.access })
  })

  it('answers 422 to a project start or due date in year 0 and changes nothing', async () => {
    for (const field of ['start_date', 'due_date']) {
      const created = await server.request('POST', '/api/v1/projects', {
        token: owner.access,
        body: { name: 'Year zero', [field]: '0000-01-01' },
      })
      expectProblemShape(created, 422)
      expect(created.body.errors[0].path).toBe(`/${field}`)
      const changed = await server.request('PATCH', `/api/v1/projects/${project.id}`, {
        token: owner.access,
        body: { name: 'Renamed', [field]: '0000-01-01' },
      })
      expectProblemShape(changed, 422)
    }
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from projects where name in ('Year zero', 'Renamed')
    `
    expect(row?.n).toBe(0)
  })

  it('answers 422 to a due date filter in year 0, and takes the last day of year 9999', async () => {
    for (const query of [
      'due_date_from=0000-01-01',
      'due_date_to=0000-01-01T00:00:00Z',
      'due_date_to=0050-01-01',
    ]) {
      const res = await server.request('GET', `/api/v1/tasks?${query}`, { token: owner.access })
      expectProblemShape(res, 422)
    }
    const task = await newTask({ due_date: '9999-12-31T12:00:00Z' })
    for (const query of ['due_date_to=9999-12-31', 'due_date_to=9999-12-31T23:59:59.999Z']) {
      const res = await server.request('GET', `/api/v1/tasks?${query}&limit=100`, {
        token: owner.access,
      })
      expect(res.status).toBe(200)
      expect(res.body.data.map((t: { id: string }) => t.id)).toContain(task.id)
    }
  })
})

describe('GET /tasks cursors', () => {
  const cursor = (sort: string, v: unknown) =>
    Buffer.from(JSON.stringify({ s: sort, v, i: '01a21f1d-2385-7016-84f4-0221856b957b' })).toString(
      'base64url',
    )

  it('answers 422 on /cursor to a cursor whose value does not fit its sort', async () => {
    const cases: [string, unknown][] = [
      ['-created_at', 'x'],
      ['-created_at', '1'],
      ['created_at', '2026-13-01 00:00:00+00'],
      ['created_at', '0000-01-01 00:00:00+00'],
      ['updated_at', '2026-01-01 00:00:00+99'],
      ['updated_at', 'allballs'],
      ['due_date', 'NaN'],
      ['-due_date', '2026-02-30 00:00:00+00'],
      ['priority', 'x'],
      ['-priority', '99999999999'],
    ]
    for (const [sort, value] of cases) {
      const res = await server.request(
        'GET',
        `/api/v1/tasks?sort=${sort}&cursor=${cursor(sort, value)}`,
        { token: owner.access },
      )
      try {
        expectProblemShape(res, 422)
      } catch (error) {
        throw new Error(`${sort} ${value}: ${(error as Error).message}`)
      }
      expect(res.body.errors[0].path).toBe('/cursor')
    }
  })

  it('walks every sort by the cursors it hands out', async () => {
    for (let i = 0; i < 3; i++)
      await newTask({ title: `Walk ${i}`, priority: 'high', due_date: '2027-01-01T00:00:00Z' })
    await newTask({ title: 'Walk without a due date' })
    const total = await taskCount()
    for (const sort of [
      '-created_at',
      'updated_at',
      'due_date',
      '-due_date',
      'priority',
      'title',
    ]) {
      const seen = new Set<string>()
      let next: string | null = null
      do {
        const res: {
          status: number
          body: { data: { id: string }[]; pagination: { next_cursor: string | null } }
        } = await server.request(
          'GET',
          `/api/v1/tasks?project_id=${project.id}&sort=${sort}&limit=2${next ? `&cursor=${next}` : ''}`,
          { token: owner.access },
        )
        expect(res.status).toBe(200)
        for (const task of res.body.data) seen.add(task.id)
        next = res.body.pagination.next_cursor
      } while (next)
      expect(seen.size).toBe(total as number)
    }
  })
})

describe('keyset cursors of comments and notifications', () => {
  // A cursor is [timestamp with microseconds, id]; year 0 has the shape but PostgreSQL has no
  // such year.
  const keyset = (at: string) =>
    Buffer.from(JSON.stringify([at, '01a21f1d-2385-7016-84f4-0221856b957b'])).toString('base64url')

  it('answers 422 on /cursor to a timestamp PostgreSQL cannot read, and pages by a real one', async () => {
    const task = await newTask({ title: 'Commented' })
    const paths = [`/api/v1/tasks/${task.id}/comments`, '/api/v1/notifications']
    for (const path of paths) {
      for (const at of ['0000-01-01T00:00:00.000000Z', '0000-12-31T23:59:59.999999Z']) {
        const res = await server.request('GET', `${path}?cursor=${keyset(at)}`, {
          token: owner.access,
        })
        try {
          expectProblemShape(res, 422)
        } catch (error) {
          throw new Error(`${path} ${at}: ${(error as Error).message}`)
        }
        expect(res.body.errors[0].path).toBe('/cursor')
      }
      const early = await server.request(
        'GET',
        `${path}?cursor=${keyset('0001-01-01T00:00:00.000000Z')}`,
        { token: owner.access },
      )
      expect(early.status).toBe(200)
      expect(early.body.data).toEqual([])
    }
  })
})

describe('GET /tasks tags', () => {
  it('answers 422 problem+json on /tags to more than 20 tags in one comma list', async () => {
    for (const tags of [
      Array.from({ length: 21 }, (_, i) => `t${i}`).join(','),
      Array(100).fill('a').join(','),
      `${'x'.repeat(1200)},y`,
    ]) {
      const res = await server.request('GET', `/api/v1/tasks?tags=${tags}`, { token: owner.access })
      expectProblemShape(res, 422)
      expect(res.body.errors[0].path).toBe('/tags')
    }
  })

  it('still filters by up to 20 tags, comma-separated or repeated', async () => {
    const tags = Array.from({ length: 20 }, (_, i) => `tag${i}`)
    const task = await newTask({ tags })
    for (const query of [`tags=${tags.join(',')}`, tags.map((t) => `tags=${t}`).join('&')]) {
      const res = await server.request('GET', `/api/v1/tasks?${query}`, { token: owner.access })
      expect(res.status).toBe(200)
      expect(res.body.data.map((t: { id: string }) => t.id)).toEqual([task.id])
    }
    const repeated = Array.from({ length: 21 }, (_, i) => `tags=r${i}`).join('&')
    expectProblemShape(
      await server.request('GET', `/api/v1/tasks?${repeated}`, { token: owner.access }),
      422,
    )
  })
})

describe('POST /tokens project_ids', () => {
  it('stores a token’s project_ids once each, whatever their letter case', async () => {
    const res = await server.request('POST', '/api/v1/tokens', {
      token: owner.access,
      body: {
        name: 'cased',
        scopes: ['tasks:read'],
        project_ids: [project.id, project.id.toUpperCase()],
      },
    })
    expect(res.status).toBe(201)
    expect(res.body.project_ids).toEqual([project.id])
    await server.request('DELETE', `/api/v1/tokens/${res.body.id}`, { token: owner.access })
  })
})
