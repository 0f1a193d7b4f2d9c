import type { AppContext, Principal } from '../../context'
import { type FieldError, forbidden, invalid } from '../../problems'
import { INSTANT_RANGE, storableTime } from '../../shared/instants'
import { isAdmin, requirePermission } from '../authz/policy'
import {
  type After,
  countTasks,
  listShape,
  listTasks,
  type SortKey,
  type TaskFilter,
  type TaskOrder,
} from './list-queries'
import { TASK_PRIORITIES, TASK_SORTS, TASK_STATUSES, type TaskListQuery } from './model'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i

/** A comma list of allowed words; an unknown word is a field error. */
function oneOf(
  value: string | undefined,
  allowed: readonly string[],
  path: string,
  errors: FieldError[],
) {
  if (value === undefined) return undefined
  const words = [
    ...new Set(
      value
        .split(',')
        .map((w) => w.trim())
        .filter(Boolean),
    ),
  ]
  if (words.length === 0 || words.some((w) => !allowed.includes(w))) {
    errors.push({ path, message: `must be one or more of: ${allowed.join(', ')}` })
    return undefined
  }
  return words
}

function tagsOf(values: string[] | undefined, errors: FieldError[]) {
  if (values === undefined) return undefined
  const given = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean)
  const tags = [...new Set(given)]
  if (given.length > 20 || tags.some((tag) => tag.length > 50))
    errors.push({ path: '/tags', message: 'at most 20 tags of 1 to 50 characters' })
  return tags.length > 0 ? tags : undefined
}

/** A due-date bound: a timestamp, or a calendar date (UTC) meaning the whole day. */
function dueBound(value: string | undefined, end: boolean, path: string, errors: FieldError[]) {
  if (value === undefined) return undefined
  const dateOnly = DATE_ONLY.test(value)
  const time = Date.parse(dateOnly ? `${value}T00:00:00Z` : value)
  if ((!dateOnly && !DATE_TIME.test(value)) || Number.isNaN(time)) {
    errors.push({ path, message: 'must be a date (YYYY-MM-DD) or an RFC 3339 timestamp' })
    return undefined
  }
  if (storableTime(new Date(time).toISOString()) === undefined) {
    errors.push({ path, message: `must be ${INSTANT_RANGE}` })
    return undefined
  }
  // The upper bound is exclusive in SQL: the end of an inclusive day or the next microsecond;
  // past the last storable instant every due date is before it.
  const bound = end ? time + (dateOnly ? 86_400_000 : 1) : time
  const iso = new Date(bound).toISOString()
  return storableTime(iso) === undefined ? 'infinity' : iso
}

type Cursor = { s: string; v: string; i: string }

// A timestamp as PostgreSQL prints it in UTC with DateStyle ISO (the sort values of the time sorts).
const PG_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?\+00$/

type Six = [number, number, number, number, number, number]

/** Could this sort value have come from the list's own query (so it casts without an error)? */
function isSortValue(key: string, value: string): boolean {
  switch (key) {
    case 'created_at':
    case 'updated_at':
    case 'due_date': {
      if (key === 'due_date' && value === 'infinity') return true
      const m = PG_TIMESTAMP.exec(value)
      if (!m) return false
      const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as Six
      // setUTCFullYear, unlike Date.UTC, takes the years 0 to 99 as they are.
      const date = new Date(0)
      date.setUTCFullYear(year, month - 1, day)
      date.setUTCHours(hour, minute, second)
      return (
        year >= 1 &&
        date.getUTCFullYear() === year &&
        date.getUTCMonth() === month - 1 &&
        date.getUTCDate() === day &&
        date.getUTCHours() === hour &&
        date.getUTCMinutes() === minute &&
        date.getUTCSeconds() === second
      )
    }
    case 'priority':
      return /^[1-4]$/.test(value)
    case 'rank':
      return /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(value)
    default:
      return true
  }
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString('base64url')

function decodeCursor(
  value: string,
  order: { key: string; name: string },
  errors: FieldError[],
): After | undefined {
  try {
    const c = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<Cursor>
    if (
      c.s === order.name &&
      typeof c.v === 'string' &&
      typeof c.i === 'string' &&
      UUID.test(c.i) &&
      isSortValue(order.key, c.v)
    )
      return { value: c.v, id: c.i }
  } catch {}
  errors.push({ path: '/cursor', message: 'is not a cursor of this list and sort' })
  return undefined
}

function orderOf(query: TaskListQuery): TaskOrder & { name: string } {
  if (!query.sort && query.search?.trim()) return { key: 'rank', descending: true, name: 'rank' }
  const sort = query.sort ?? '-created_at'
  const descending = sort.startsWith('-')
  const key = (descending ? sort.slice(1) : sort) as SortKey
  if (!(TASK_SORTS as readonly string[]).includes(key)) throw new Error(`unknown sort ${sort}`)
  return { key, descending, name: sort }
}

/**
 * GET /tasks and /tasks/search: the caller's tasks (membership is a join in the query itself),
 * filtered, sorted, by page or by keyset cursor.
 */
export async function listTasksForUser(
  ctx: AppContext,
  principal: Principal,
  query: TaskListQuery,
) {
  const admin = isAdmin(principal)
  if (!admin) requirePermission(principal, 'tasks.read')
  if (query.all && !admin) throw forbidden('Only admins may list the tasks of every project')
  const errors: FieldError[] = []
  const search = query.search?.trim() || undefined
  const filter: TaskFilter = {
    userId: query.all ? undefined : principal.userId,
    projectIds: principal.token?.projectIds,
    projectId: query.project_id,
    assigneeId: query.assignee_id === 'me' ? principal.userId : query.assignee_id,
    statuses: oneOf(query.status, TASK_STATUSES, '/status', errors),
    priorities: oneOf(query.priority, TASK_PRIORITIES, '/priority', errors),
    tags: tagsOf(query.tags, errors),
    dueFrom: dueBound(query.due_date_from, false, '/due_date_from', errors),
    dueBefore: dueBound(query.due_date_to, true, '/due_date_to', errors),
    search,
  }
  if (filter.assigneeId && !UUID.test(filter.assigneeId))
    errors.push({ path: '/assignee_id', message: 'must be a user id or "me"' })
  const order = orderOf(query)
  const after = query.cursor ? decodeCursor(query.cursor, order, errors) : undefined
  if (errors.length > 0) throw invalid(errors)
  const page = query.page ?? 1
  const limit = query.limit ?? 20
  const offset = (page - 1) * limit
  const shape = await listShape(ctx.sql, filter)
  const rows = await listTasks(ctx.sql, filter, order, { limit, offset, after }, shape)
  const more = rows.length > limit
  // A page with nothing after it already tells the total; only a longer list is counted.
  // A ranked page counts its matches itself (`total` on each row).
  const total = after
    ? null
    : more || (rows.length === 0 && offset > 0)
      ? (rows[0]?.total ?? (await countTasks(ctx.sql, filter, shape)))
      : offset + rows.length
  const data = rows.slice(0, limit).map(({ sort_value: _, total: _total, ...task }) => task)
  const last = rows[limit - 1]
  return {
    data,
    pagination: {
      page: after ? 1 : page,
      limit,
      total,
      pages: total === null ? null : Math.ceil(total / limit),
      next_cursor:
        more && last ? encodeCursor({ s: order.name, v: last.sort_value, i: last.id }) : null,
    },
  }
}
