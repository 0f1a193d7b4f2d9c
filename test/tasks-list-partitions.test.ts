import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { listShape, listTasks } from '../src/modules/tasks/list-queries'
import { createProject } from './factories'
import { registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

// GET /tasks reads each (project, status, priority) partition on its own and merges them
// (list-queries.ts). Over a small dataset with many ties, every page, cursor chain and total
// must equal a naive query over the same filters.

type User = Awaited<ReturnType<typeof registerUser>>

let server: TestServer
let reader: User
let owner: User
let outsider: User
let firstProject: string

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']
const STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']
const PRIORITIES = ['low', 'medium', 'high', 'urgent']

beforeAll(async () => {
  server = await startServer()
  owner = await registerUser(server)
  reader = await registerUser(server)
  outsider = await registerUser(server)
  const mine = [
    await createProject(server, owner, [[reader, 'member']]),
    await createProject(server, owner, [[reader, 'viewer']]),
    await createProject(server, reader),
  ]
  firstProject = (mine[0] as { id: string }).id
  const foreign = await createProject(server, outsider)
  // 450 tasks over four projects: a few distinct created_at values (ties broken by id), and
  // titles and descriptions from six words, so searches match from a few rows to most of them.
  const projectIds = [...mine.map((p) => p.id), foreign.id]
  await server.db.sql`
    insert into tasks (title, description, project_id, created_by, status, priority, due_date,
      created_at, updated_at)
    select
      (${WORDS}::text[])[1 + i % 6] || ' ' || (${WORDS}::text[])[1 + (i * 7) % 5] || ' ' || i,
      case when i % 4 = 0 then null else (${WORDS}::text[])[1 + (i * 11) % 6] || ' alpha' end,
      (${projectIds}::uuid[])[1 + (i * 13) % 4],
      ${owner.id},
      (${STATUSES}::text[])[1 + (i * 3) % 5],
      (${PRIORITIES}::text[])[1 + (i * 5) % 4],
      case when i % 3 = 0 then null else now() + make_interval(days => i % 9) end,
      now() - make_interval(mins => i % 40),
      now() - make_interval(mins => (i * 17) % 23)
    from generate_series(1, 450) as i
  `
  // A rare word in a few tasks of every project, the outsider's included: a search for it is read
  // term first (list-queries.ts listShape), once the planner has the vector's statistics.
  await server.db.sql`
    update tasks set title = title || ' zebra'
    where id in (
      select id
      from (select id, row_number() over (partition by project_id order by id) as n from tasks) x
      where n <= 2
    )
  `
  await server.db.sql`analyze tasks, project_members`
}, 60_000)
afterAll(() => server.close(), 30_000)

const SORT_SQL: Record<string, string> = {
  created_at: 't.created_at',
  updated_at: 't.updated_at',
  due_date: "coalesce(t.due_date, 'infinity'::timestamptz)",
  priority: "array_position(array['low', 'medium', 'high', 'urgent']::text[], t.priority::text)",
  title: 't.title',
}

/** The ids the list must return, in order, and their number: one plain query. */
async function naive(q: {
  status?: string
  priority?: string
  search?: string
  sort?: string
  all?: string
}) {
  const sql = server.db.sql
  const sort = q.sort ?? (q.search ? 'rank' : '-created_at')
  const descending = sort.startsWith('-') || sort === 'rank'
  const key = sort.replace(/^-/, '')
  const expression =
    key === 'rank'
      ? sql`ts_rank(t.search, websearch_to_tsquery('english', ${q.search ?? ''}))`
      : sql.unsafe(SORT_SQL[key] as string)
  const direction = descending ? sql`desc` : sql`asc`
  const rows = await sql<{ id: string }[]>`
    select t.id
    from tasks t
    where (${q.all === 'true'}
      or t.project_id in (select project_id from project_members where user_id = ${reader.id}))
      ${q.status ? sql`and t.status = any(${q.status.split(',')}::text[])` : sql``}
      ${q.priority ? sql`and t.priority = any(${q.priority.split(',')}::text[])` : sql``}
      ${q.search ? sql`and t.search @@ websearch_to_tsquery('english', ${q.search})` : sql``}
    order by ${expression} ${direction}, t.id ${direction}
  `
  return rows.map((r) => r.id)
}

const queryOf = (q: Record<string, string | undefined>) =>
  Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(v as string)}`)
    .join('&')

async function get(query: string, as: User = reader) {
  const res = await server.request('GET', `/api/v1/tasks?${query}`, { token: as.access })
  if (res.status !== 200) throw new Error(`list failed: ${res.status} ${res.text}`)
  return res.body as {
    data: { id: string }[]
    pagination: { total: number | null; next_cursor: string | null }
  }
}

const cases: Record<string, string | undefined>[] = [
  {},
  { status: 'todo,in_progress', priority: 'high' },
  { status: 'done' },
  { priority: 'low,urgent' },
  { status: 'todo,in_review,cancelled', priority: 'medium,high' },
  { search: 'alpha' },
  { search: 'bravo', status: 'todo,done', priority: 'urgent' },
  { search: 'delta echo' },
  { search: 'charlie', status: 'in_progress,in_review' },
  { search: 'zulu' },
  { status: 'todo,in_progress', priority: 'high', sort: 'title' },
  { status: 'done,cancelled', sort: '-updated_at' },
  { priority: 'low,medium', sort: 'due_date' },
  { status: 'todo,in_review', sort: '-priority' },
  { search: 'alpha', status: 'todo,done', sort: '-created_at' },
  { search: 'zebra' },
  { search: 'zebra', sort: '-created_at' },
  { search: 'zebra', sort: 'title' },
  { search: 'zebra -alpha' },
  { search: 'zebra', status: 'todo,done' },
]

describe('GET /tasks by partitions equals a naive query', () => {
  it('pages by number: every row in order, and the total', async () => {
    for (const q of cases) {
      const want = await naive(q)
      const got: string[] = []
      for (let page = 1; page <= Math.ceil(want.length / 25) + 1; page++) {
        const body = await get(queryOf({ ...q, limit: '25', page: String(page) }))
        if (page === 1) expect(body.pagination.total).toBe(want.length)
        got.push(...body.data.map((t) => t.id))
      }
      expect({ q, got }).toEqual({ q, got: want })
    }
  })

  it('pages by cursor: every row in order', async () => {
    for (const q of cases) {
      const want = await naive(q)
      const got: string[] = []
      let cursor: string | undefined
      for (let i = 0; i < 50; i++) {
        const body = await get(queryOf({ ...q, limit: '40', cursor }))
        got.push(...body.data.map((t) => t.id))
        if (!body.pagination.next_cursor) break
        cursor = body.pagination.next_cursor
      }
      expect({ q, got }).toEqual({ q, got: want })
    }
  })

  it('reads a rare term first and a common one by partitions', async () => {
    const filter = { userId: reader.id, search: 'zebra' }
    expect(await listShape(server.db.sql, filter)).toBe('term first')
    expect(await listShape(server.db.sql, { ...filter, search: 'alpha' })).toBe('partitions')
    // With a status or priority filter, always by partitions.
    expect(await listShape(server.db.sql, { ...filter, statuses: ['todo'] })).toBe('partitions')
  })

  it("read term first, never lists another project's tasks; an admin's all=true lists them", async () => {
    const foreign = await server.db.sql<{ id: string }[]>`
      select t.id from tasks t join projects p on p.id = t.project_id
      where p.owner_id = ${outsider.id} and t.title like '% zebra'
    `
    expect(foreign.length).toBeGreaterThan(0)
    const mine = await get('limit=100&search=zebra')
    const ids = new Set(mine.data.map((t) => t.id))
    expect(foreign.filter((t) => ids.has(t.id))).toEqual([])
    expect(mine.data.map((t) => t.id)).toEqual(await naive({ search: 'zebra' }))

    const all = await get('limit=100&search=zebra&all=true', owner)
    const allIds = all.data.map((t) => t.id)
    expect(allIds).toEqual(await naive({ search: 'zebra', all: 'true' }))
    expect(foreign.every((t) => allIds.includes(t.id))).toBe(true)
    expect(all.pagination.total).toBe(allIds.length)
  })

  it("read term first, keeps to an API token's projects", async () => {
    const filter = { userId: reader.id, projectIds: [firstProject], search: 'zebra' }
    const read = (shape: 'partitions' | 'term first') =>
      listTasks(
        server.db.sql,
        filter,
        { key: 'rank', descending: true },
        { limit: 100, offset: 0 },
        shape,
      )
    const termFirst = await read('term first')
    expect(termFirst.length).toBeGreaterThan(0)
    expect(termFirst.every((t) => t.project_id === firstProject)).toBe(true)
    expect(termFirst.map((t) => t.id)).toEqual((await read('partitions')).map((t) => t.id))
  })

  it("never lists another project's tasks", async () => {
    const everything = await naive({})
    expect(everything.length).toBeGreaterThan(250)
    const body = await get('limit=100&search=alpha')
    const foreign = await server.db.sql<{ id: string }[]>`
      select t.id from tasks t join projects p on p.id = t.project_id where p.owner_id = ${outsider.id}
    `
    expect(foreign.length).toBeGreaterThan(50)
    const ids = new Set(body.data.map((t) => t.id))
    expect(foreign.filter((t) => ids.has(t.id))).toEqual([])
  })
})
