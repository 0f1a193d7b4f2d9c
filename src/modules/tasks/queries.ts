import type postgres from 'postgres'
import type { Executor } from '../../db'
import { announcedEventSql } from '../../realtime/queries'
import type { ProjectRole } from '../authz/policy'
import type { Task, TaskPriority, TaskStatus } from './model'

/** A task as answered, plus the caller's role in its project (null for non-members). */
export type TaskWithRole = Task & { member_role: ProjectRole | null }

/** The columns of a `Task` answer, over `t` (tasks) joined by `taskJoins`. */
export const taskColumns = (db: Executor) => db`
  t.id, t.title, t.description, t.project_id, p.name as project_name,
  t.assignee_id, a.username as assignee_name, t.created_by, c.username as created_by_name,
  t.status, t.priority, t.due_date, t.completed_at, t.estimated_hours, t.actual_hours,
  t.tags, t.version, t.created_at, t.updated_at
`

export const taskJoins = (db: Executor) => db`
  join projects p on p.id = t.project_id
  left join users a on a.id = t.assignee_id
  join users c on c.id = t.created_by
`

// The columns an insert or update hands to the answering select.
const returnedColumns = (db: Executor) => db`
  id, title, description, project_id, assignee_id, created_by, status, priority, due_date,
  completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at
`

/**
 * The hot path: the task, its joined names and the caller's membership in one statement, so
 * that a read is one round trip and the 404/403 decision needs no second query. Written out
 * whole (the same columns and joins as `taskColumns` and `taskJoins`) rather than from those
 * fragments: each fragment is a query object postgres.js builds again on every call.
 */
export async function selectTaskWithRole(
  db: Executor,
  id: string,
  userId: string,
  lock: 'lock' | 'no lock' = 'no lock',
) {
  const [row] =
    lock === 'lock'
      ? await db<TaskWithRole[]>`
          select t.id, t.title, t.description, t.project_id, p.name as project_name,
            t.assignee_id, a.username as assignee_name, t.created_by, c.username as created_by_name,
            t.status, t.priority, t.due_date, t.completed_at, t.estimated_hours, t.actual_hours,
            t.tags, t.version, t.created_at, t.updated_at, pm.role as member_role
          from tasks t
          join projects p on p.id = t.project_id
          left join users a on a.id = t.assignee_id
          join users c on c.id = t.created_by
          left join project_members pm on pm.project_id = t.project_id and pm.user_id = ${userId}
          where t.id = ${id}
          for update of t
        `
      : await db<TaskWithRole[]>`
          select t.id, t.title, t.description, t.project_id, p.name as project_name,
            t.assignee_id, a.username as assignee_name, t.created_by, c.username as created_by_name,
            t.status, t.priority, t.due_date, t.completed_at, t.estimated_hours, t.actual_hours,
            t.tags, t.version, t.created_at, t.updated_at, pm.role as member_role
          from tasks t
          join projects p on p.id = t.project_id
          left join users a on a.id = t.assignee_id
          join users c on c.id = t.created_by
          left join project_members pm on pm.project_id = t.project_id and pm.user_id = ${userId}
          where t.id = ${id}
        `
  return row
}

export async function isProjectMember(db: Executor, projectId: string, userId: string) {
  // Held until the caller's transaction ends: a removal of this member (which clears their
  // assignments) waits for it, so it cannot clear them before this assignment is written.
  const [row] = await db<{ ok: number }[]>`
    select 1 as ok
    from project_members
    where project_id = ${projectId}
      and user_id = ${userId}
    for key share
  `
  return row !== undefined
}

export type NewTask = {
  title: string
  description: string | null
  project_id: string
  assignee_id: string | null
  created_by: string
  status: TaskStatus
  priority: TaskPriority
  due_date: string | null
  estimated_hours: number | null
  tags: string[]
}

/** What decides whether a task may be created, read in the statement that creates it. */
export type CreateAccess = {
  /** The caller's role in the project; null when not a member. */
  member_role: ProjectRole | null
  project_exists: boolean
  /** No assignee, or one who is a member of the project. */
  assignee_ok: boolean
}

/**
 * Creates the task and its `task.created` activity entry in one statement, only if the project
 * exists, the caller's role there is one of `roles` ('any': whatever it is, members or not), and
 * the assignee (if any) is a member. Answers the task (null when nothing was created) and what
 * was found, so that the caller can tell which condition failed. One round trip instead of
 * four (membership, assignee, insert, activity): writes are bound by statements per request.
 */
export async function insertTaskIfAllowed(
  db: Executor,
  task: NewTask,
  roles: 'any' | readonly ProjectRole[],
) {
  const [row] = await db.unsafe<(CreateAccess & (Task | { [K in keyof Task]: null }))[]>(
    INSERT_TASK_IF_ALLOWED,
    checkedInsertParameters(task, roles),
    { prepare: true },
  )
  if (!row) throw new Error('task insert answered nothing')
  const { project_exists, member_role, assignee_ok, ...created } = row
  return {
    access: { project_exists, member_role, assignee_ok },
    task: created.id === null ? null : (created as Task),
  }
}

// A timestamp as the API writes it (toISOString: UTC, milliseconds truncated, `Z`).
const isoText = (column: string) =>
  `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

// The checks, the task and its activity entry, and the task as answered (`created`): the common
// table expressions both creates start with, as SQL text built once (sent with `unsafe`,
// prepared: the same from postgres.js fragments is text built again on every call). Parameters:
// $1 creator, $2 project, $3 assignee, $4 title, $5 description, $6 status, $7 priority, $8 due
// date, $9 estimated hours, $10 tags, $11 whether any role may create, $12 the roles that may.
const CHECKED_INSERT = `
  access as (
    select true as found, pm.role
    from projects p
    left join project_members pm on pm.project_id = p.id and pm.user_id = $1::uuid
    where p.id = $2::uuid
  ),
  assignee as (
    select $3::uuid is null or exists (
      select 1
      from project_members
      where project_id = $2::uuid
        and user_id = $3::uuid
      -- A removal of the assignee (which clears their assignments) waits for this insert.
      for key share
    ) as ok
  ),
  t as (
    insert into tasks (
      title, description, project_id, assignee_id, created_by, status, priority, due_date,
      estimated_hours, tags, completed_at
    )
    select $4::varchar, $5::text, $2::uuid, $3::uuid, $1::uuid, $6::varchar, $7::varchar,
      $8::timestamptz, $9::integer, $10::text[], case when $6::text = 'done' then now() end
    from access, assignee
    where assignee.ok
      and ($11::boolean or access.role = any($12::text[]))
    returning id, title, description, project_id, assignee_id, created_by, status, priority,
      due_date, completed_at, estimated_hours, actual_hours, tags, version, created_at, updated_at
  ),
  activity as (
    insert into activity_log (user_id, project_id, action, entity_type, entity_id, details)
    select t.created_by, t.project_id, 'task.created', 'task', t.id,
      jsonb_build_object('title', t.title)
    from t
  ),
  created as (
    select t.id, t.title, t.description, t.project_id, p.name as project_name,
      t.assignee_id, a.username as assignee_name, t.created_by, c.username as created_by_name,
      t.status, t.priority, t.due_date, t.completed_at, t.estimated_hours, t.actual_hours,
      t.tags, t.version, t.created_at, t.updated_at
    from t
    join projects p on p.id = t.project_id
    left join users a on a.id = t.assignee_id
    join users c on c.id = t.created_by
  )
`

const checkedInsertParameters = (task: NewTask, roles: 'any' | readonly ProjectRole[]) =>
  [
    task.created_by,
    task.project_id,
    task.assignee_id,
    task.title,
    task.description,
    task.status,
    task.priority,
    task.due_date,
    task.estimated_hours,
    task.tags,
    roles === 'any',
    roles === 'any' ? [] : [...roles],
  ] as never[]

const INSERT_TASK_IF_ALLOWED = `
  with ${CHECKED_INSERT}
  select coalesce(access.found, false) as project_exists, access.role as member_role,
    assignee.ok as assignee_ok, created.*
  from assignee
  left join access on true
  left join created on true
`

// insertTaskAnnounced's statement: CHECKED_INSERT, then the event built from `created`.
const INSERT_TASK_ANNOUNCED = `
  with ${CHECKED_INSERT},
  input as (
    select created.project_id, 'task.created'::text as event,
      '{"task":' || (
        select row_to_json(shown)::text
        from (
          select created.id, created.title, created.description, created.project_id,
            created.project_name, created.assignee_id, created.assignee_name,
            created.created_by, created.created_by_name, created.status, created.priority,
            ${isoText('created.due_date')} as due_date,
            ${isoText('created.completed_at')} as completed_at,
            created.estimated_hours, created.actual_hours, created.tags, created.version,
            ${isoText('created.created_at')} as created_at,
            ${isoText('created.updated_at')} as updated_at
        ) shown
      ) || ',"actor_id":' || to_json(created.created_by::text)::text || '}' as data
    from created
  ),
  ${announcedEventSql('after commit')}
  select coalesce(access.found, false) as project_exists, access.role as member_role,
    assignee.ok as assignee_ok, created.*, e.id as event_id, signal.text as signal
  from assignee
  left join access on true
  left join created on true
  left join e on true
  left join signal on true
`

/**
 * insertTaskIfAllowed and the `task.created` event in one autocommitted statement, for a session
 * of `onOneSession` (PostgreSQL): the event's data, `{"task": <the task as answered>, "actor_id"}`,
 * is built here (the same keys in the same order, timestamps as the API writes them), and the
 * event is recorded as insertAnnouncedEvent records it ('after commit': the project's event lock
 * is the session's, and the caller announces and releases it with `announceEvent`). `event` is
 * null when nothing was created (no lock was taken then). Sent as text built once (`unsafe`,
 * prepared): the same statement from fragments cost the server tens of µs per call to rebuild.
 */
export async function insertTaskAnnounced(
  db: Executor,
  task: NewTask,
  roles: 'any' | readonly ProjectRole[],
) {
  const [row] = await db.unsafe<
    (CreateAccess &
      (Task | { [K in keyof Task]: null }) & { event_id: string | null; signal: string | null })[]
  >(INSERT_TASK_ANNOUNCED, checkedInsertParameters(task, roles), { prepare: true })
  if (!row) throw new Error('task insert answered nothing')
  const { project_exists, member_role, assignee_ok, event_id, signal, ...created } = row
  return {
    access: { project_exists, member_role, assignee_ok },
    task: created.id === null ? null : (created as Task),
    event: event_id === null || signal === null ? null : { id: Number(event_id), signal },
  }
}

export type TaskChanges = Partial<{
  title: string
  description: string | null
  assignee_id: string | null
  status: TaskStatus
  priority: TaskPriority
  due_date: string | null
  estimated_hours: number | null
  actual_hours: number | null
  tags: string[]
}>

/** The activity entry of a change, written by the statement that makes it. */
export type ChangeActivity = { user_id: string; action: string; details: Record<string, unknown> }

/**
 * Applies `changes` only if the task is still at `version` (compare-and-swap: a concurrent writer
 * makes this match no row); bumps the version; keeps `completed_at` in step with the status; and,
 * when it applied, records `activity` about the task in the same statement.
 */
export async function updateTaskAtVersion(
  db: Executor,
  id: string,
  version: number,
  changes: TaskChanges,
  activity: ChangeActivity,
) {
  const columns = (Object.keys(changes) as (keyof TaskChanges)[]).filter(
    (c) => changes[c] !== undefined,
  )
  if (columns.length === 0) throw new Error('updateTaskAtVersion needs at least one change')
  // In a SET list, `status` and `completed_at` still name the row's values before the update.
  const completedAt =
    changes.status === undefined
      ? db``
      : db`, completed_at = case
          when ${changes.status}::text <> 'done' then null
          when status = 'done' then coalesce(completed_at, now())
          else now()
        end`
  const [row] = await db<Task[]>`
    with t as (
      update tasks
      set ${db(changes, ...columns)}, version = version + 1, updated_at = now() ${completedAt}
      where id = ${id}
        and version = ${version}
      returning ${returnedColumns(db)}
    ),
    activity as (
      insert into activity_log (user_id, project_id, action, entity_type, entity_id, details)
      select ${activity.user_id}, t.project_id, ${activity.action}, 'task', t.id,
        ${db.json(activity.details as postgres.JSONValue)}
      from t
    )
    select ${taskColumns(db)}
    from t
    ${taskJoins(db)}
  `
  return row
}

/** Deletes the task if it is still at `version`; false when it changed or went meanwhile. */
export async function deleteTaskAtVersion(db: Executor, id: string, version: number) {
  const rows = await db`
    delete from tasks
    where id = ${id}
      and version = ${version}
    returning id
  `
  return rows.length > 0
}
