import type postgres from 'postgres'
import type { Executor } from '../../db'
import type { Task, TaskSort } from './model'
import { taskColumns, taskJoins } from './queries'

type Fragment = postgres.PendingQuery<postgres.Row[]>

/** The filters of GET /tasks, already parsed and checked. */
export type TaskFilter = {
  /** The caller, whose projects bound the list; undefined only for an admin's `all=true`. */
  userId: string | undefined
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

/** The where-clause of a task list: the caller's projects (by the join) and every filter given. */
function taskFilters(db: Executor, f: TaskFilter): Fragment {
  const members = f.userId
    ? db`join project_members me on me.project_id = t.project_id and me.user_id = ${f.userId}`
    : db``
  return db`
    ${members}
    where true
      ${f.projectId ? db`and t.project_id = ${f.projectId}` : db``}
      ${f.assigneeId ? db`and t.assignee_id = ${f.assigneeId}` : db``}
      ${f.statuses ? db`and t.status = any(${f.statuses}::text[])` : db``}
      ${f.priorities ? db`and t.priority = any(${f.priorities}::text[])` : db``}
      ${f.tags ? db`and t.tags @> ${f.tags}::text[]` : db``}
      ${f.dueFrom ? db`and t.due_date >= ${f.dueFrom}::timestamptz` : db``}
      ${f.dueBefore ? db`and t.due_date < ${f.dueBefore}::timestamptz` : db``}
      ${f.search ? db`and t.search @@ websearch_to_tsquery('english', ${f.search})` : db``}
  `
}

/**
 * One page of the caller's tasks, one row more than `limit` to tell whether another page follows;
 * each row carries `sort_value`, its sort key as text, for the next cursor. Not async: the bench
 * wraps the pending query in `explain`.
 */
export function listTasks(
  db: Executor,
  filter: TaskFilter,
  order: TaskOrder,
  page: { limit: number; offset: number; after?: After },
) {
  const key = sortExpression(db, order.key, filter.search)
  const direction = order.descending ? db`desc` : db`asc`
  const keyset = page.after
    ? order.descending
      ? db`and (${key}, t.id) < (${castValue(db, order.key, page.after.value)}, ${page.after.id}::uuid)`
      : db`and (${key}, t.id) > (${castValue(db, order.key, page.after.value)}, ${page.after.id}::uuid)`
    : db``
  return db<(Task & { sort_value: string })[]>`
    select ${taskColumns(db)}, (${key})::text as sort_value
    from tasks t
    ${taskJoins(db)}
    ${taskFilters(db, filter)}
      ${keyset}
    order by ${key} ${direction}, t.id ${direction}
    limit ${page.limit + 1}
    offset ${page.after ? 0 : page.offset}
  `
}

export function countTasksQuery(db: Executor, filter: TaskFilter) {
  return db<{ total: number }[]>`
    select count(*)::int as total
    from tasks t
    ${taskFilters(db, filter)}
  `
}

export async function countTasks(db: Executor, filter: TaskFilter) {
  const [row] = await countTasksQuery(db, filter)
  return row?.total ?? 0
}
