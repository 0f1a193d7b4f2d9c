import type { Principal } from '../../context'
import { HttpProblem } from '../../problems'
import { canOnProject } from '../authz/policy'
import type { NewNotification } from '../notifications/queries'
import type { Task } from './model'
import type { TaskWithRole } from './queries'

export const preconditionFailed = () =>
  new HttpProblem(412, 'Precondition failed', 'If-Match does not match the task’s current ETag')

/** The strong validator of a task version. */
export const etagOf = (version: number) => `"${version}"`

/**
 * The versions an If-Match header accepts: undefined without the header, 'any' for `*`. A weak
 * or malformed tag can never match (If-Match uses the strong comparison, RFC 9110 §13.1.1).
 */
export function parseIfMatch(header: string | null | undefined): number[] | 'any' | undefined {
  if (header === null || header === undefined) return undefined
  if (header.trim() === '*') return 'any'
  const versions: number[] = []
  for (const tag of header.split(',')) {
    const m = /^\s*"(\d{1,10})"\s*$/.exec(tag)
    if (m) versions.push(Number(m[1]))
  }
  return versions
}

export const matches = (expected: number[] | 'any' | undefined, version: number) =>
  expected === undefined || expected === 'any' || expected.includes(version)

// The instants a timestamp column stores and reads back unchanged: PostgreSQL has no year 0 and
// cannot read toISOString's expanded years (+010000-…), and the driver's parse of its text
// (src/db.ts, `new Date`) reads the years 1 to 99 as 1950 to 2049.
const EARLIEST_INSTANT = Date.parse('0100-01-01T00:00:00.000Z')
const LATEST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z')
export const INSTANT_RANGE = 'an RFC 3339 timestamp between the years 100 and 9999 (UTC)'

// RFC 3339 (seconds optional), or a calendar date meaning its midnight UTC. The request schemas'
// `date-time` format also lets through `01/02/2026` or `2026-12-01 10:00`, which Date.parse
// reads in the server's own time zone.
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/

const inRange = (n: number, low: number, high: number) => n >= low && n <= high

/** The time of a timestamp, or undefined when it is malformed or outside what can be stored. */
export function storableTime(value: string): number | undefined {
  const text = value.toUpperCase()
  const m = TIMESTAMP.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m
    .slice(1)
    .map((part) => Number(part ?? 0)) as number[]
  // setUTCFullYear, unlike Date.UTC, takes the years 0 to 99 as they are.
  const date = new Date(0)
  date.setUTCFullYear(year as number, (month as number) - 1, day)
  const fieldsOk =
    date.getUTCMonth() === (month as number) - 1 &&
    date.getUTCDate() === day &&
    inRange(hour as number, 0, 23) &&
    inRange(minute as number, 0, 59) &&
    inRange(second as number, 0, 59) &&
    inRange(offsetHours as number, 0, 23) &&
    inRange(offsetMinutes as number, 0, 59)
  if (!fieldsOk) return undefined
  const time = Date.parse(m[4] === undefined ? `${text}T00:00:00Z` : text)
  return time >= EARLIEST_INSTANT && time <= LATEST_INSTANT ? time : undefined
}

/** May the caller delete this task: its creator (who can still write there), a moderator, an admin. */
export function canDeleteTask(principal: Principal, task: TaskWithRole) {
  const role = task.member_role ?? undefined
  if (canOnProject(principal, 'task.moderate', role, task.project_id)) return true
  return (
    task.created_by === principal.userId &&
    canOnProject(principal, 'task.write', role, task.project_id)
  )
}

// Names in notification titles are cut so the title stays within its 255 characters.
const short = (title: string) => (title.length > 120 ? `${title.slice(0, 119)}…` : title)

/** Who hears about a change: the new assignee, and creator and assignee on completion. */
export function notificationsFor(actorId: string, before: Task | undefined, after: Task) {
  const out: NewNotification[] = []
  const entity = { entity_type: 'task' as const, entity_id: after.id }
  if (after.assignee_id && after.assignee_id !== before?.assignee_id)
    out.push({
      user_id: after.assignee_id,
      type: 'task_assigned',
      title: `Task assigned: ${short(after.title)}`,
      message: `You were assigned to the task "${short(after.title)}".`,
      ...entity,
    })
  if (after.status === 'done' && before !== undefined && before.status !== 'done')
    for (const userId of new Set([after.created_by, after.assignee_id]))
      if (userId)
        out.push({
          user_id: userId,
          type: 'task_completed',
          title: `Task completed: ${short(after.title)}`,
          message: `The task "${short(after.title)}" was marked done.`,
          ...entity,
        })
  return out.filter((n) => n.user_id !== actorId)
}
