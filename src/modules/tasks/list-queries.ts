import type postgres from 'postgres'
import type { Executor } from '../../db'
import { TASK_PRIORITIES, TASK_STATUSES, type Task, type TaskSort } from './model'
import { taskColumns, taskJoins } from './queries'

type Fragment = postgres.PendingQuery<postgres.Row[]>

/** The filters of GET /tasks, already parsed and checked. */
export type TaskFilter = {
  /** The caller, whose projects bound the list; undefined only for an admin's `all=true`. */
  userId: string | undefined
  /** An API token's project limit: only these projects, whatever the rest says. */
  projectIds?: readonly string[]
  projectId?: string
  assigneeId?: string
  statuses?: string[]
  priorities?: string[]
  tags?: string[]
  dueFrom?: string
  /** Exclusive upper bound. */
  dueBefore?: string
  search?: string
}

/** A sort key: `rank` is the full-text relevance, used with `search` when no sort is given. */
export type SortKey = TaskSort | 'rank'
export type TaskOrder = { key: SortKey; descending: boolean }

/** Where a keyset page starts: after the row with this sort value (as text) and id. */
export type After = { value: string; id: string }

// Each sort key's expression, and its cast for a value read back from a cursor. Null due dates
// sort as infinity, so keyset comparisons never meet a null.
const sortExpression = (db: Executor, key: SortKey, search: string | undefined): Fragment => {
  switch (key) {
    case 'created_at':
      return db`t.created_at`
    case 'updated_at':
      return db`t.updated_at`
    case 'due_date':
      return db`coalesce(t.due_date, 'infinity'::timestamptz)`
    case 'priority':
      return db`array_position(array['low', 'medium', 'high', 'urgent']::text[], t.priority::text)`
    case 'title':
      return db`t.title`
    case 'rank':
      return db`ts_rank(t.search, websearch_to_tsquery('english', ${search ?? ''}))`
  }
}

const castValue = (db: Executor, key: SortKey, value: string): Fragment => {
  switch (key) {
    case 'created_at':
    case 'updated_at':
    case 'due_date':
      return db`${value}::timestamptz`
    case 'priority':
      return db`${value}::integer`
    case 'title':
      return db`${value}::varchar`
    case 'rank':
      return db`${value}::real`
  }
}

// One value compares with `=`, a list with `= any(...)` (only where the list is not split into
// partitions).
const oneOrAny = (db: Executor, column: Fragment, values: string[]) =>
  values.length === 1
    ? db`and ${column} = ${values[0] as string}`
    : db`and ${column} = any(${values}::text[])`

/**
 * Every filter given, as `and ...` conditions over `t` (tasks). With `split`, status and
 * priority are left out: the partition already fixes them to one value each.
 */
function taskConditions(db: Executor, f: TaskFilter, split = false): Fragment {
  return db`
    ${f.projectId ? db`and t.project_id = ${f.projectId}` : db``}
    ${f.assigneeId ? db`and t.assignee_id = ${f.assigneeId}` : db``}
    ${f.statuses && !split ? oneOrAny(db, db`t.status`, f.statuses) : db``}
    ${f.priorities && !split ? oneOrAny(db, db`t.priority`, f.priorities) : db``}
    ${f.tags ? db`and t.tags @> ${f.tags}::text[]` : db``}
    ${f.dueFrom ? db`and t.due_date >= ${f.dueFrom}::timestamptz` : db``}
    ${f.dueBefore ? db`and t.due_date < ${f.dueBefore}::timestamptz` : db``}
    ${
      !f.search
        ? db``
        : split
          ? // Not an index condition on purpose: within a partition the term is checked on the
            // entries of its btree (which carries `search`), never through the GIN index, whose
            // posting list of a common term costs tens of ms to read per partition. So the plan
            // does not depend on the term, and the statement stays prepared (plannedPerCall).
            db`and (t.search @@ websearch_to_tsquery('english', ${f.search})) is true`
          : db`and t.search @@ websearch_to_tsquery('english', ${f.search})`
    }
  `
}

/**
 * The partitions a list is read in: each visible project (`me.project_id`), and when a status or
 * a priority is asked for, times each status (`st.status`) and each priority (`pr.priority`),
 * every value of the one not asked for (both columns are checked against these lists). They are
 * disjoint and together hold every matching task, so the first rows of each, merged, are the
 * list's first rows. A partition is an equality on (project_id, status, priority), the head of the
 * index on (project_id, status, priority, created_at desc, id desc) include (search) (0014): its
 * newest rows come in order and the scan stops early, where `status = any(...)` would read and
 * sort every row of every status; and a search is checked and ranked on that index's entries
 * alone, without reading the table. With neither filter, a partition is a project.
 */
function partitions(db: Executor, f: TaskFilter) {
  const split = Boolean(f.statuses || f.priorities)
  const statuses = f.statuses ?? [...TASK_STATUSES]
  const priorities = f.priorities ?? [...TASK_PRIORITIES]
  return {
    split,
    from: db`
      (${visibleProjects(db, f)}) me
      ${
        split
          ? db`cross join unnest(${statuses}::text[]) as st(status)
               cross join unnest(${priorities}::text[]) as pr(priority)`
          : db``
      }
    `,
    where: db`
      t.project_id = me.project_id
      ${split ? db`and t.status = st.status and t.priority = pr.priority` : db``}
    `,
  }
}

/** The projects whose tasks may be listed: the caller's, or every one for an admin's all=true. */
const visibleProjects = (db: Executor, f: TaskFilter) => db`
  ${
    f.userId
      ? db`select project_id from project_members where user_id = ${f.userId}`
      : db`select id as project_id from projects where true`
  }
  ${f.projectIds ? db`and ${f.userId ? db`project_id` : db`id`} = any(${f.projectIds as string[]}::uuid[])` : db``}
`

/**
 * How a list is read: by partitions (see `partitions`), or, for a search with neither a status nor
 * a priority filter whose term is rare next to the tasks the caller can see, term first: the
 * full-text index gives the term's matches in every project once, and those of projects the caller
 * cannot see are dropped. Read by partitions, a rare term costs a full-text index scan per visible
 * project (the term's whole posting list each time) or a scan of every visible task; term first,
 * it costs its own matches. A common term stays with the partitions, whose index entries carry the
 * search vector (no table read per match) and stop early in a newest-first order.
 */
export type ListShape = 'partitions' | 'term first'

/**
 * Below this many estimated matches per visible task, a search is read term first. Measured by
 * `bun bench/listing.ts` (1,000,000 tasks, a user who sees about 100,000 of them, one client,
 * PostgreSQL 15 with 128 MB of shared buffers: neither the table nor the index fits), the page
 * query's p50, partitions against term first: a term in about 0.05% of tasks 9.5 against 2.0 ms;
 * in about 0.7% (0.07 matches per visible task) 28 against 55 ms; in about 5%, 39 against
 * 346 ms, a table read per match. Term first wins well below 0.07, hence 0.05.
 */
const TERM_FIRST_BELOW = 0.05

/**
 * The shape for this filter. With a search and neither status nor priority, PostgreSQL's own
 * estimates decide: how many tasks of the whole table match the term (from the search vector's
 * statistics, with the term in hand) against how many tasks the caller can see (in `project_id`
 * when given). One `explain` round trip, planned with the values, nothing executed.
 */
export async function listShape(db: Executor, filter: TaskFilter): Promise<ListShape> {
  if (!filter.search || filter.statuses || filter.priorities) return 'partitions'
  const explained = db<{ 'QUERY PLAN': unknown }[]>`
    explain (format json)
    select 1 from tasks t
    where t.search @@ websearch_to_tsquery('english', ${filter.search})
    union all
    select 1 from tasks t
    where t.project_id in (${visibleProjects(db, filter)})
      ${filter.projectId ? db`and t.project_id = ${filter.projectId}` : db``}
  `
  ;(explained as unknown as { options: { prepare?: boolean } }).options.prepare = false
  const [row] = await explained
  const plan = row?.['QUERY PLAN']
  const parsed = (typeof plan === 'string' ? JSON.parse(plan) : plan) as
    | [{ Plan: { Plans?: { 'Plan Rows'?: number }[] } }]
    | undefined
  const [matches, visible] = (parsed?.[0]?.Plan?.Plans ?? []).map((p) => p['Plan Rows'])
  if (typeof matches !== 'number' || typeof visible !== 'number') return 'partitions'
  return matches < visible * TERM_FIRST_BELOW ? 'term first' : 'partitions'
}

/**
 * Term first (see ListShape): the visible projects are a hashed filter, not an index condition,
 * so that the term's full-text index is the only way in (PostgreSQL would otherwise intersect it
 * with each project's index entries). With neither a user nor a token limit, every project.
 */
function termFirstScope(db: Executor, f: TaskFilter): Fragment {
  return !f.userId && !f.projectIds
    ? db``
    : db`and (t.project_id in (${visibleProjects(db, f)})) is true`
}

/**
 * A search over whole projects (no status or priority filter) is sent as an unnamed statement,
 * so PostgreSQL plans it with the term in hand each time: a rare term is best found through the
 * GIN index, a common one by reading the project's index entries. A prepared statement switches
 * to a generic plan after five runs, which cannot know how common the term is: it took the GIN
 * posting list per project even for a term in a fifth of all tasks (seconds instead of tens of
 * ms; bench/listing.ts). Split into partitions, a search has one plan for every term (see
 * taskConditions) and stays prepared: planning this query costs several ms.
 */
function plannedPerCall<T>(query: T, filter: TaskFilter, split: boolean): T {
  if (filter.search && !split)
    (query as unknown as { options: { prepare?: boolean } }).options.prepare = false
  return query
}

/**
 * One page of the caller's tasks, one row more than `limit` to tell whether another page follows;
 * each row carries `sort_value`, its sort key as text, for the next cursor. Each partition
 * (project, or project x status x priority, see `partitions`) gives its own first rows in order
 * (a lateral subquery that an index ending in the sort key can stop early), those are merged,
 * and names are joined to the page's rows only.
 * Not async: the bench wraps the pending query in `explain`.
 */
export function listTasks(
  db: Executor,
  filter: TaskFilter,
  order: TaskOrder,
  page: { limit: number; offset: number; after?: After },
  shape: ListShape = 'partitions',
) {
  const key = sortExpression(db, order.key, filter.search)
  const direction = order.descending ? db`desc` : db`asc`
  const keyset = page.after
    ? order.descending
      ? db`and (${key}, t.id) < (${castValue(db, order.key, page.after.value)}, ${page.after.id}::uuid)`
      : db`and (${key}, t.id) > (${castValue(db, order.key, page.after.value)}, ${page.after.id}::uuid)`
    : db``
  const offset = page.after ? 0 : page.offset
  const parts = partitions(db, filter)
  // Ranked by relevance, every match of a partition is read and ranked anyway: counting them on
  // the way gives the total without a second pass (`total`; null otherwise).
  const counted = order.key === 'rank' && !page.after
  const byPartitions = () => db`
    select t.id, t.sort_key,
      ${
        counted ? db`sum(t.part_count) filter (where t.part_row = 1) over ()` : db`null::bigint`
      } as total
    from ${parts.from}
    cross join lateral (
      select t.id, ${key} as sort_key
        ${
          counted
            ? db`, count(*) over () as part_count,
                 row_number() over (order by ${key} ${direction}, t.id ${direction}) as part_row`
            : db``
        }
      from tasks t
      where ${parts.where}
        ${taskConditions(db, filter, parts.split)}
        ${keyset}
      order by ${key} ${direction}, t.id ${direction}
      limit ${offset + page.limit + 1}
    ) t
    order by t.sort_key ${direction}, t.id ${direction}
    limit ${page.limit + 1}
    offset ${offset}
  `
  const termFirst = () => db`
    select t.id, ${key} as sort_key,
      ${counted ? db`count(*) over ()` : db`null::bigint`} as total
    from tasks t
    where true
      ${termFirstScope(db, filter)}
      ${taskConditions(db, filter)}
      ${keyset}
    order by ${key} ${direction}, t.id ${direction}
    limit ${page.limit + 1}
    offset ${offset}
  `
  return plannedPerCall(
    db<(Task & { sort_value: string; total: number | null })[]>`
    with page as (
      ${shape === 'term first' ? termFirst() : byPartitions()}
    )
    select ${taskColumns(db)}, page.sort_key::text as sort_value, page.total::int as total
    from page
    join tasks t on t.id = page.id
    ${taskJoins(db)}
    order by page.sort_key ${direction}, page.id ${direction}
  `,
    filter,
    parts.split,
  )
}

export function countTasksQuery(db: Executor, filter: TaskFilter, shape: ListShape = 'partitions') {
  const parts = partitions(db, filter)
  if (shape === 'term first')
    return plannedPerCall(
      db<{ total: number }[]>`
        select count(*)::int as total
        from tasks t
        where true
          ${termFirstScope(db, filter)}
          ${taskConditions(db, filter)}
      `,
      filter,
      false,
    )
  return plannedPerCall(
    db<{ total: number }[]>`
    select coalesce(sum(c.n), 0)::int as total
    from ${parts.from}
    cross join lateral (
      select count(*) as n
      from tasks t
      where ${parts.where}
        ${taskConditions(db, filter, parts.split)}
    ) c
  `,
    filter,
    parts.split,
  )
}

export async function countTasks(
  db: Executor,
  filter: TaskFilter,
  shape: ListShape = 'partitions',
) {
  const [row] = await countTasksQuery(db, filter, shape)
  return row?.total ?? 0
}
