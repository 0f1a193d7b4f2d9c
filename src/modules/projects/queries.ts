import type postgres from 'postgres'
import type { Executor } from '../../db'
import type { ProjectRole } from '../authz/policy'
import type { NewProject, Project, ProjectChanges } from './model'

/** The editable columns of a project, in the order activity entries list them. */
export const PROJECT_FIELDS = [
  'name',
  'description',
  'status',
  'priority',
  'start_date',
  'due_date',
  'completed_at',
] as const

export type ProjectRow = Pick<Project, (typeof PROJECT_FIELDS)[number] | 'id' | 'owner_id'>

// Escapes LIKE wildcards so a search for "50%" matches the text and not a pattern.
const likePattern = (search: string) => `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** The project columns and the caller's role, from `projects p` joined to their membership. */
function projectWithRole(db: Executor, userId: string, memberJoin: 'left' | 'inner') {
  return db`
    select
      p.id, p.name, p.description, p.owner_id, p.status, p.priority, p.start_date, p.due_date,
      p.completed_at, pm.role as member_role, p.created_at, p.updated_at
    from projects p
    ${memberJoin === 'inner' ? db`join` : db`left join`} project_members pm
      on pm.project_id = p.id and pm.user_id = ${userId}
  `
}

/**
 * Projects as the API shows them: the rows of `selected` (already filtered, ordered and limited)
 * with their task counts by status from one aggregate per project, in the same statement.
 */
function withTaskCounts(db: Executor, selected: postgres.PendingQuery<postgres.Row[]>) {
  return db`
    select
      p.id, p.name, p.description, p.owner_id, p.status, p.priority, p.start_date, p.due_date,
      p.completed_at, p.member_role,
      json_build_object(
        'todo', c.todo, 'in_progress', c.in_progress, 'in_review', c.in_review,
        'done', c.done, 'cancelled', c.cancelled
      ) as task_counts,
      p.created_at, p.updated_at
    from (${selected}) p
    cross join lateral (
      select
        count(*) filter (where t.status = 'todo')::int as todo,
        count(*) filter (where t.status = 'in_progress')::int as in_progress,
        count(*) filter (where t.status = 'in_review')::int as in_review,
        count(*) filter (where t.status = 'done')::int as done,
        count(*) filter (where t.status = 'cancelled')::int as cancelled
      from tasks t
      where t.project_id = p.id
    ) c
  `
}

/** One project with the caller's role (null when not a member); undefined when there is none. */
export async function selectProjectView(db: Executor, projectId: string, userId: string) {
  const [row] = await db<Project[]>`
    ${withTaskCounts(db, db`${projectWithRole(db, userId, 'left')} where p.id = ${projectId}`)}
  `
  return row
}

export type ProjectFilter = {
  userId: string
  /** Every project (admins), not only those the user is a member of. */
  all: boolean
  /** An API token's project limit: only these projects, whatever the rest says. */
  projectIds?: readonly string[]
  status?: string
  search?: string
}

function projectFilter(db: Executor, filter: ProjectFilter) {
  const pattern = filter.search ? likePattern(filter.search) : undefined
  return db`
    where true
      ${filter.projectIds ? db`and p.id = any(${filter.projectIds as string[]}::uuid[])` : db``}
      ${filter.status ? db`and p.status = ${filter.status}` : db``}
      ${pattern ? db`and (p.name ilike ${pattern} or p.description ilike ${pattern})` : db``}
  `
}

/** A page of projects; the task counts are computed for that page only. */
export async function listProjects(
  db: Executor,
  filter: ProjectFilter,
  limit: number,
  offset: number,
) {
  const page = db`
    ${projectWithRole(db, filter.userId, filter.all ? 'left' : 'inner')}
    ${projectFilter(db, filter)}
    order by p.created_at desc, p.id desc
    limit ${limit}
    offset ${offset}
  `
  return db<Project[]>`
    ${withTaskCounts(db, page)}
    order by p.created_at desc, p.id desc
  `
}

export async function countProjects(db: Executor, filter: ProjectFilter) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from projects p
    ${filter.all ? db`` : db`join project_members pm on pm.project_id = p.id and pm.user_id = ${filter.userId}`}
    ${projectFilter(db, filter)}
  `
  return row?.total ?? 0
}

export async function insertProject(db: Executor, input: NewProject, ownerId: string) {
  const [row] = await db<ProjectRow[]>`
    insert into projects (
      name, description, owner_id, status, priority, start_date, due_date, completed_at
    )
    values (
      ${input.name}, ${input.description ?? null}, ${ownerId}, ${input.status ?? 'active'},
      ${input.priority ?? 'medium'}, ${input.start_date ?? null}, ${input.due_date ?? null},
      ${input.status === 'completed' ? db`now()` : null}
    )
    returning id, owner_id, name, description, status, priority, start_date, due_date, completed_at
  `
  return row as ProjectRow
}

/**
 * The project's editable state, locked until the transaction ends: `edit` (no key update) lets
 * tasks be added meanwhile, `delete` makes new tasks wait (and then fail).
 */
export async function selectProjectForUpdate(
  db: Executor,
  projectId: string,
  lock: 'edit' | 'delete' = 'edit',
) {
  const [row] = await db<ProjectRow[]>`
    select id, owner_id, name, description, status, priority, start_date, due_date, completed_at
    from projects
    where id = ${projectId}
    ${lock === 'delete' ? db`for update` : db`for no key update`}
  `
  return row
}

const UPDATABLE = ['name', 'description', 'status', 'priority', 'start_date', 'due_date'] as const

/**
 * Applies only the fields present in `changes`; `completed` sets or clears completed_at when the
 * status enters or leaves `completed`. Returns the new state.
 */
export async function updateProject(
  db: Executor,
  projectId: string,
  changes: ProjectChanges,
  completed: 'set' | 'clear' | undefined,
) {
  const columns = UPDATABLE.filter((c) => changes[c] !== undefined)
  const [row] = await db<ProjectRow[]>`
    update projects
    set ${db(changes, ...columns)},
      ${completed === 'set' ? db`completed_at = now(),` : completed === 'clear' ? db`completed_at = null,` : db``}
      updated_at = now()
    where id = ${projectId}
    returning id, owner_id, name, description, status, priority, start_date, due_date, completed_at
  `
  return row as ProjectRow
}

/**
 * Locks the project's tasks (waiting for uploads in flight to commit) and deletes their
 * attachment rows; returns the stored paths so the files can be removed after commit.
 */
export async function deleteProjectAttachments(db: Executor, projectId: string) {
  await db`
    select id
    from tasks
    where project_id = ${projectId}
    for update
  `
  return db<{ task_id: string; file_path: string }[]>`
    delete from task_attachments a
    using tasks t
    where t.id = a.task_id
      and t.project_id = ${projectId}
    returning a.task_id, a.file_path
  `
}

/** Deletes the project; its members, tasks, comments and activity go with it (cascade). */
export async function deleteProject(db: Executor, projectId: string) {
  await db`
    delete from projects
    where id = ${projectId}
  `
}

export async function insertMember(
  db: Executor,
  projectId: string,
  userId: string,
  role: ProjectRole,
) {
  await db`
    insert into project_members (project_id, user_id, role)
    values (${projectId}, ${userId}, ${role})
  `
}
