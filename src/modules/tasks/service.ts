import { onOneSession } from '../../after-commit'
import type { AppContext, Principal } from '../../context'
import type { Executor } from '../../db'
import { forbidden, invalid, notFound } from '../../problems'
import { announceNotifications, recordEvent } from '../../realtime/events'
import { announceEvent } from '../../realtime/queries'
import { INSTANT_RANGE, storableTime } from '../../shared/instants'
import { changedFields } from '../activity/changes'
import { insertActivity } from '../activity/queries'
import { removeTaskFiles } from '../attachments/storage'
import { canOnProject, type ProjectRole, projectRolesAllowed } from '../authz/policy'
import { tokenAllowsProject } from '../authz/token-scopes'
import type { AnswerInTransaction } from '../idempotency/middleware'
import { insertNotifications } from '../notifications/queries'
import type { CreateTask, Task, UpdateTask } from './model'
import {
  type CreateAccess,
  deleteTaskAtVersion,
  insertTaskAnnounced,
  insertTaskIfAllowed,
  isProjectMember,
  type NewTask,
  selectTaskWithRole,
  type TaskChanges,
  type TaskWithRole,
  updateTaskAtVersion,
} from './queries'
import { canDeleteTask, matches, notificationsFor, parseIfMatch, preconditionFailed } from './rules'

function notAllowed(role: string | null) {
  return forbidden(
    role ? 'Your project role does not allow this' : 'You are not a member of this task’s project',
  )
}

/** Strips the caller's role from a row before it is answered (in place: the row is ours). */
function asTask(row: TaskWithRole | Task): Task {
  delete (row as Partial<TaskWithRole>).member_role
  return row
}

export async function getTask(ctx: AppContext, principal: Principal, id: string) {
  const row = await selectTaskWithRole(ctx.sql, id, principal.userId)
  if (!row) throw notFound('No such task')
  if (!canOnProject(principal, 'task.read', row.member_role ?? undefined, row.project_id))
    throw notAllowed(row.member_role)
  return asTask(row)
}

async function requireAssignable(db: Executor, projectId: string, assigneeId: string | null) {
  if (assigneeId && !(await isProjectMember(db, projectId, assigneeId)))
    throw invalid([{ path: '/assignee_id', message: 'must be a member of the task’s project' }])
}

/**
 * `finish` (answerInTransaction) runs last in the transaction, storing the idempotent answer.
 * In a transaction, four statements when nobody is notified: begin, the checked insert with its
 * activity entry, the event (insertAnnouncedEvent), commit; on PostgreSQL, with no `finish` and
 * nobody to notify, one (createInOneStatement).
 */
export async function createTask(
  ctx: AppContext,
  principal: Principal,
  input: CreateTask,
  finish?: AnswerInTransaction<Task>,
) {
  const roles = projectRolesAllowed(principal, 'task.write', input.project_id)
  const newTask: NewTask = {
    title: input.title,
    description: input.description ?? null,
    project_id: input.project_id,
    assignee_id: input.assignee_id ?? null,
    created_by: principal.userId,
    status: input.status ?? 'todo',
    priority: input.priority ?? 'medium',
    due_date: normalizeTime(input.due_date),
    estimated_hours: input.estimated_hours ?? null,
    tags: uniqueTags(input.tags ?? []),
  }
  // Nobody else is notified of a task one assigns to oneself or to nobody (notificationsFor).
  const notifies = newTask.assignee_id !== null && newTask.assignee_id !== principal.userId
  const session = onOneSession(ctx.sql)
  if (session && !finish && !notifies)
    return session((connection) => createInOneStatement(connection, principal, newTask, roles))
  const created = ctx.sql.begin(async (tx) => {
    const { access, task } = await insertTaskIfAllowed(tx, newTask, roles)
    if (!task) throw createRefused(principal, input.project_id, access)
    await announceNotifications(
      tx,
      await insertNotifications(tx, notificationsFor(principal.userId, undefined, task)),
    )
    await recordEvent(tx, {
      project_id: task.project_id,
      event: 'task.created',
      data: { task, actor_id: principal.userId },
    })
    await finish?.(tx, task)
    return task
  })
  return created.catch((error) => {
    throw projectDeletedMeanwhile(error)
  })
}

/**
 * On PostgreSQL, when no idempotent answer is stored with it and nobody is notified: the create
 * is one statement (the task, its activity entry, its event and webhook deliveries;
 * insertTaskAnnounced), then, on the same session, the event's NOTIFY and the release of the
 * project's event lock, as a transaction's commit would be followed (recordEvent). Three
 * statements in two round trips instead of six in three: writes are bound by statements.
 * A failed NOTIFY does not fail the create that committed (the event is stored; sockets get it
 * with `since`, webhooks from the outbox).
 */
async function createInOneStatement(
  connection: Executor,
  principal: Principal,
  newTask: NewTask,
  roles: 'any' | readonly ProjectRole[],
) {
  const { access, task, event } = await insertTaskAnnounced(connection, newTask, roles).catch(
    (error: unknown) => {
      throw projectDeletedMeanwhile(error)
    },
  )
  if (!task) throw createRefused(principal, newTask.project_id, access)
  if (event)
    await announceEvent(connection, { project_id: task.project_id, ...event }).catch(() =>
      connection`select pg_advisory_unlock_all()`.catch(() => {}),
    )
  return task
}

/**
 * A project deleted after the insert's check read it: the rows' foreign keys on the project refuse
 * them, which is the missing project's 422, not a conflict.
 */
function projectDeletedMeanwhile(error: unknown): unknown {
  const pg = error as { code?: unknown; constraint_name?: unknown }
  return pg?.code === '23503' &&
    typeof pg.constraint_name === 'string' &&
    pg.constraint_name.endsWith('_project_id_fkey')
    ? invalid([{ path: '/project_id', message: 'no such project' }])
    : error
}

/**
 * Why a create was refused, in the order the checks are documented: the project named in the
 * body (a field error, not a missing resource), the token's projects, the caller's role, the
 * assignee.
 */
function createRefused(principal: Principal, projectId: string, access: CreateAccess) {
  if (!access.project_exists) return invalid([{ path: '/project_id', message: 'no such project' }])
  if (!tokenAllowsProject(principal, projectId))
    return forbidden('This token is not allowed in this project')
  if (!canOnProject(principal, 'task.write', access.member_role ?? undefined, projectId))
    return forbidden(
      access.member_role
        ? 'Your project role does not allow this'
        : 'You are not a member of this project',
    )
  if (!access.assignee_ok)
    return invalid([{ path: '/assignee_id', message: 'must be a member of the task’s project' }])
  return new Error('task insert refused for no known reason')
}

/** A due date in stored form (UTC); one the database cannot store is a 422 on /due_date. */
function normalizeTime(value: string | null | undefined) {
  if (value === null || value === undefined) return null
  const time = storableTime(value)
  if (time === undefined)
    throw invalid([{ path: '/due_date', message: `must be ${INSTANT_RANGE}` }])
  return new Date(time).toISOString()
}

const uniqueTags = (tags: string[]) => [...new Set(tags)]

const CHANGEABLE = [
  'title',
  'description',
  'assignee_id',
  'status',
  'priority',
  'due_date',
  'estimated_hours',
  'actual_hours',
  'tags',
] as const

/** The body's fields that are present, in stored form (null tags empty the list). */
function requestedChanges(input: UpdateTask): TaskChanges {
  const changes: TaskChanges = {}
  for (const field of CHANGEABLE) {
    const value = input[field]
    if (value === undefined) continue
    if (field === 'tags') changes.tags = uniqueTags((value as string[] | null) ?? [])
    else if (field === 'due_date') changes.due_date = normalizeTime(value as string | null)
    else Object.assign(changes, { [field]: value })
  }
  return changes
}

export type TaskAction = 'task.updated' | 'task.assigned' | 'task.status_changed'

/**
 * Applies a partial change; nothing is written when no field actually differs. With If-Match
 * the row is read without a lock and the UPDATE itself requires the matched version (`where
 * version = $n`), so of concurrent writers holding the same ETag exactly one wins and the others
 * get 412. Without If-Match the row is locked while read, so the change applies to what was read.
 */
export async function changeTask(
  ctx: AppContext,
  principal: Principal,
  id: string,
  input: UpdateTask,
  ifMatch: string | null | undefined,
  action: TaskAction = 'task.updated',
): Promise<Task> {
  const expected = parseIfMatch(ifMatch)
  const requested = requestedChanges(input)
  return ctx.sql.begin(async (tx) => {
    const lock = expected === undefined ? 'lock' : 'no lock'
    const current = await selectTaskWithRole(tx, id, principal.userId, lock)
    if (!current) throw notFound('No such task')
    if (
      !canOnProject(principal, 'task.write', current.member_role ?? undefined, current.project_id)
    )
      throw notAllowed(current.member_role)
    if (!matches(expected, current.version)) throw preconditionFailed()
    const before = asTask(current)
    const diff = changedFields(before, { ...before, ...requested }, CHANGEABLE)
    if (Object.keys(diff).length === 0) return before
    const changes = Object.fromEntries(
      Object.keys(diff).map((f) => [f, requested[f as keyof TaskChanges]]),
    ) as TaskChanges
    if (diff.assignee_id)
      await requireAssignable(tx, before.project_id, changes.assignee_id ?? null)
    const after = await updateTaskAtVersion(tx, id, before.version, changes, {
      user_id: principal.userId,
      action,
      details: diff,
    })
    // Only a concurrent writer can have moved the version: the If-Match read is stale.
    if (!after) throw preconditionFailed()
    await announceNotifications(
      tx,
      await insertNotifications(tx, notificationsFor(principal.userId, before, after)),
    )
    await recordEvent(tx, {
      project_id: after.project_id,
      event: action,
      data: { task: after, changes: diff, actor_id: principal.userId },
    })
    return after
  })
}

export async function deleteTask(
  ctx: AppContext,
  principal: Principal,
  id: string,
  ifMatch: string | null | undefined,
) {
  const expected = parseIfMatch(ifMatch)
  const projectId = await ctx.sql.begin(async (tx) => {
    const lock = expected === undefined ? 'lock' : 'no lock'
    const current = await selectTaskWithRole(tx, id, principal.userId, lock)
    if (!current) throw notFound('No such task')
    if (!canOnProject(principal, 'task.read', current.member_role ?? undefined, current.project_id))
      throw notAllowed(current.member_role)
    if (!canDeleteTask(principal, current))
      throw forbidden(
        'Only the task’s creator, a project owner or manager, or an admin may delete it',
      )
    if (!matches(expected, current.version)) throw preconditionFailed()
    // With If-Match the delete is a compare-and-swap too; without it the row is locked already.
    if (!(await deleteTaskAtVersion(tx, id, current.version))) throw preconditionFailed()
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: current.project_id,
      action: 'task.deleted',
      entity_type: 'task',
      entity_id: id,
      details: { title: current.title },
    })
    await recordEvent(tx, {
      project_id: current.project_id,
      event: 'task.deleted',
      data: { task_id: id, title: current.title, actor_id: principal.userId },
    })
    return current.project_id
  })
  // The attachment rows went with the task (cascade); their files go once that has committed.
  await removeTaskFiles(ctx.config, projectId, id)
}
