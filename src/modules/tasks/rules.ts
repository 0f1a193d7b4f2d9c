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
