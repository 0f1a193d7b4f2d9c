import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { createProject } from './factories'
import { expectProblemShape, registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// Every test here makes several requests on a shared, possibly cold machine: well above 5 s.

type User = Awaited<ReturnType<typeof registerUser>>
type Task = { id: string; title: string; [k: string]: unknown }

let server: TestServer
let owner: User
let member: User
let outsider: User
let foreign: { id: string; name: string }

beforeAll(async () => {
  server = await startServer()
  owner = await registerUser(server)
  member = await registerUser(server)
  outsider = await registerUser(server)
  // The outsider's own project, with a task every search below would also match.
  foreign = await createProject(server, outsider)
  await post(outsider, {
    title: 'Secret database migration plan',
    project_id: foreign.id,
    tags: ['x', 'y'],
    status: 'in_progress',
    priority: 'urgent',
  })
}, 60_000)
afterAll(() => server.close(), 30_000)

async function post(by: User, body: Record<string, unknown>): Promise<Task> {
  const res = await server.request('POST', '/api/v1/tasks', { token: by.access, body })
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`)
  return res.body
}

const list = (by: User, query: string) =>
  server.request('GET', `/api/v1/tasks${query}`, { token: by.access })

async function titles(by: User, query: string) {
  const res = await list(by, query)
  if (res.status !== 200) throw new Error(`list failed: ${res.status} ${res.text}`)
  return res.body.data.map((t: Task) => t.title) as string[]
}

/** Inserts `n` tasks in one statement (one shared created_at: ties are broken by id). */
async function bulkTasks(projectId: string, n: number, prefix: string) {
  const sql = server.db.sql
  return sql<{ id: string }[]>`
    insert into tasks (title, project_id, created_by, due_date, priority)
    select
      ${prefix} || ' ' || lpad(i::text, 4, '0'), ${projectId}, ${owner.id},
      case when i % 3 = 0 then null else now() + make_interval(days => i % 17) end,
      (array['low', 'medium', 'high', 'urgent'])[1 + i % 4]
    from generate_series(1, ${n}) as i
    returning id
  `
}

describe('GET /tasks filters', () => {
  let f: { id: string }
  beforeAll(async () => {
    f = await createProject(server, owner, [[member, 'member']], { name: 'Filters' })
    const base = { project_id: f.id }
    await post(owner, {
      ...base,
      title: 'F1',
      status: 'todo',
      priority: 'high',
      tags: ['api', 'bug'],
    })
    await post(owner, {
      ...base,
      title: 'F2',
      status: 'in_progress',
      priority: 'high',
      tags: ['api'],
    })
    await post(owner, {
      ...base,
      title: 'F3',
      status: 'done',
      priority: 'low',
      tags: ['bug', 'api', 'ui'],
      assignee_id: member.id,
      due_date: '2026-12-01T10:00:00Z',
    })
    await post(owner, {
      ...base,
      title: 'F4',
      status: 'in_progress',
      priority: 'urgent',
      assignee_id: member.id,
      due_date: '2026-12-02T23:59:59Z',
    })
    await post(owner, {
      ...base,
      title: 'F5',
      status: 'cancelled',
      priority: 'medium',
      due_date: '2026-12-05T00:00:00Z',
    })
  }, 30_000)
  const q = (query: string) => `?project_id=${f.id}&sort=title&${query}`

  it('filters by one status, a list of statuses, and priorities', async () => {
    expect(await titles(owner, q('status=in_progress'))).toEqual(['F2', 'F4'])
    expect(await titles(owner, q('status=todo,done'))).toEqual(['F1', 'F3'])
    expect(await titles(owner, q('priority=high'))).toEqual(['F1', 'F2'])
    expect(await titles(owner, q('priority=urgent,low'))).toEqual(['F3', 'F4'])
  })

  it('matches tasks that have all the tags, comma-separated or repeated', async () => {
    expect(await titles(owner, q('tags=api'))).toEqual(['F1', 'F2', 'F3'])
    expect(await titles(owner, q('tags=api,bug'))).toEqual(['F1', 'F3'])
    expect(await titles(owner, q('tags=bug&tags=api'))).toEqual(['F1', 'F3'])
    expect(await titles(owner, q('tags=bug,ui&tags=api'))).toEqual(['F3'])
    expect(await titles(owner, q('tags=nothing'))).toEqual([])
  })

  it('filters by assignee, "me" included, and by inclusive due dates', async () => {
    expect(await titles(owner, q(`assignee_id=${member.id}`))).toEqual(['F3', 'F4'])
    expect(await titles(member, q('assignee_id=me'))).toEqual(['F3', 'F4'])
    expect(await titles(owner, q('assignee_id=me'))).toEqual([])
    expect(await titles(owner, q('due_date_from=2026-12-01&due_date_to=2026-12-02'))).toEqual([
      'F3',
      'F4',
    ])
    expect(await titles(owner, q('due_date_from=2026-12-02T00:00:00Z'))).toEqual(['F4', 'F5'])
    expect(await titles(owner, q('due_date_to=2026-12-01T10:00:00Z'))).toEqual(['F3'])
  })

  it('combines filters', async () => {
    expect(await titles(owner, q('status=in_progress,done&tags=api'))).toEqual(['F2', 'F3'])
    expect(
      await titles(owner, q(`status=in_progress,done&assignee_id=${member.id}&priority=urgent`)),
    ).toEqual(['F4'])
    expect(await titles(owner, q('status=done&priority=high'))).toEqual([])
  })

  it('sorts by each key, both ways, nulls of due_date last ascending', async () => {
    expect(await titles(owner, q('').replace('sort=title', 'sort=-title'))).toEqual([
      'F5',
      'F4',
      'F3',
      'F2',
      'F1',
    ])
    const byPriority = await titles(owner, `?project_id=${f.id}&sort=-priority`)
    expect(byPriority[0]).toBe('F4')
    expect(byPriority.at(-1)).toBe('F3')
    const due = await titles(owner, `?project_id=${f.id}&sort=due_date`)
    expect(due.slice(0, 3)).toEqual(['F3', 'F4', 'F5'])
    expect(due.slice(3).sort()).toEqual(['F1', 'F2'])
    expect(await titles(owner, `?project_id=${f.id}&sort=created_at`)).toEqual([
      'F1',
      'F2',
      'F3',
      'F4',
      'F5',
    ])
    expect(await titles(owner, `?project_id=${f.id}`)).toEqual(['F5', 'F4', 'F3', 'F2', 'F1'])
  })

  it('answers 422 for a bad filter, sort, limit, page or cursor, never 500', async () => {
    const bad: [string, string][] = [
      ['status=open', '/status'],
      ['priority=high,extreme', '/priority'],
      ['sort=-name', '/sort'],
      ['sort=1;drop table tasks', '/sort'],
      ['limit=101', '/limit'],
      ['limit=0', '/limit'],
      ['page=0', '/page'],
      ['project_id=nope', '/project_id'],
      ['assignee_id=someone', '/assignee_id'],
      ['due_date_from=yesterday', '/due_date_from'],
      ['due_date_to=2026-13-45', '/due_date_to'],
      ['cursor=bm9wZQ', '/cursor'],
      [`tags=${'x'.repeat(51)}`, '/tags'],
    ]
    for (const [query, path] of bad) {
      const res = await list(owner, `?${query}`)
      expectProblemShape(res, 422)
      expect(`${query} ${res.body.errors.map((e: { path: string }) => e.path)}`).toContain(path)
    }
  })
})

describe('GET /tasks search', () => {
  let s: { id: string }
  beforeAll(async () => {
    s = await createProject(server, owner, [[member, 'member']], { name: 'Search' })
    await post(owner, {
      project_id: s.id,
      title: 'Fix login page',
      description: 'The database is fine here',
    })
    await post(owner, {
      project_id: s.id,
      title: 'Database migration',
      description: 'Migrate the database schema',
    })
    await post(owner, {
      project_id: s.id,
      title: 'Write notes',
      description: 'Mention a database once',
    })
    await post(owner, { project_id: s.id, title: 'Unrelated', description: 'Nothing to see' })
  }, 30_000)

  it('returns the best match first, title weighted above description', async () => {
    const found = await titles(member, `?project_id=${s.id}&search=database`)
    expect(found[0]).toBe('Database migration')
    expect(found.sort()).toEqual(['Database migration', 'Fix login page', 'Write notes'])
    expect(await titles(member, `/search?project_id=${s.id}&search=migrations`)).toEqual([
      'Database migration',
    ])
  })

  it('takes web-search syntax and combines with filters and an explicit sort', async () => {
    expect(
      await titles(member, `?project_id=${s.id}&search=database -migration&sort=title`),
    ).toEqual(['Fix login page', 'Write notes'])
    expect(await titles(member, `?project_id=${s.id}&search="login page"`)).toEqual([
      'Fix login page',
    ])
    expect(
      await titles(
        member,
        `?project_id=${s.id}&search=${encodeURIComponent('database')}&status=done`,
      ),
    ).toEqual([])
  })

  it('never shows another project’s tasks, whatever the query', async () => {
    const res = await list(member, '/search?search=secret database migration&limit=100')
    expect(res.status).toBe(200)
    expect(res.body.data.map((t: Task) => t.project_id)).not.toContain(foreign.id)
    expect((await list(member, `?project_id=${foreign.id}`)).body).toMatchObject({
      data: [],
      pagination: { total: 0 },
    })
    expect(await titles(member, '?tags=x,y')).toEqual([])
    const theirs = await titles(outsider, '?limit=100')
    expect(theirs).toEqual(['Secret database migration plan'])
    expect(await titles(outsider, '?search=database&limit=100')).toEqual([
      'Secret database migration plan',
    ])
  })
})

describe('GET /tasks pagination', () => {
  it('answers the right totals and pages, and a viewer sees the project too', async () => {
    const p = await createProject(server, owner, [[member, 'viewer']])
    await bulkTasks(p.id, 45, 'Paged')
    const first = await list(member, `?project_id=${p.id}&limit=20`)
    expect(first.body.pagination).toMatchObject({ page: 1, limit: 20, total: 45, pages: 3 })
    expect(first.body.data).toHaveLength(20)
    expect(typeof first.body.pagination.next_cursor).toBe('string')
    const last = await list(member, `?project_id=${p.id}&limit=20&page=3`)
    expect(last.body.data).toHaveLength(5)
    expect(last.body.pagination).toMatchObject({ page: 3, total: 45, pages: 3, next_cursor: null })
    const beyond = await list(member, `?project_id=${p.id}&limit=20&page=9`)
    expect(beyond.body).toMatchObject({ data: [], pagination: { total: 45, next_cursor: null } })
    const pages = [first, await list(member, `?project_id=${p.id}&limit=20&page=2`), last]
    const ids = pages.flatMap((r) => r.body.data.map((t: Task) => t.id))
    expect(new Set(ids).size).toBe(45)
    expect((await list(member, '?limit=100')).body.pagination.total).toBeGreaterThanOrEqual(45)
  })

  for (const sort of ['-created_at', 'title', 'due_date', '-priority', 'search'])
    it(`walks 250 tasks by cursor (${sort}) exactly once while tasks are inserted`, async () => {
      const p = await createProject(server, owner, [[member, 'member']])
      const original = new Set((await bulkTasks(p.id, 250, 'Walk')).map((r) => r.id))
      const query = sort === 'search' ? 'search=walk' : `sort=${sort}`
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const suffix: string = cursor ? `&cursor=${cursor}` : ''
        const res = await list(member, `?project_id=${p.id}&limit=17&${query}${suffix}`)
        expect(res.status).toBe(200)
        if (cursor) expect(res.body.pagination).toMatchObject({ total: null, pages: null })
        seen.push(...res.body.data.map((t: Task) => t.id))
        cursor = res.body.pagination.next_cursor
        // New tasks land before, among and after the walk's position.
        await post(member, { project_id: p.id, title: `Walk inserted ${pages} A` })
        await post(member, {
          project_id: p.id,
          title: `Walk 0${pages}5 inserted`,
          priority: 'urgent',
        })
        pages++
      } while (cursor && pages < 100)
      const fromOriginal = seen.filter((id) => original.has(id))
      expect(fromOriginal).toHaveLength(250)
      expect(new Set(fromOriginal).size).toBe(250)
      expect(new Set(seen).size).toBe(seen.length)
    }, 60_000)

  it('refuses a cursor made for another sort', async () => {
    const p = await createProject(server, owner, [[member, 'member']])
    await bulkTasks(p.id, 5, 'Mismatch')
    const res = await list(member, `?project_id=${p.id}&limit=2&sort=title`)
    const cursor = res.body.pagination.next_cursor
    expectProblemShape(
      await list(member, `?project_id=${p.id}&limit=2&sort=-title&cursor=${cursor}`),
      422,
    )
    const next = await list(member, `?project_id=${p.id}&limit=2&sort=title&cursor=${cursor}`)
    expect(next.body.data.map((t: Task) => t.title)).toEqual(['Mismatch 0003', 'Mismatch 0004'])
  })

  it('answers 401 without a token', async () => {
    expectProblemShape(await server.request('GET', '/api/v1/tasks'), 401)
    expectProblemShape(await server.request('GET', '/api/v1/tasks/search?search=x'), 401)
  })
})
