import type { AppContext, Principal } from '../../context'
import { forbidden, invalid, notFound } from '../../problems'
import { recordEvent } from '../../realtime/events'
import { paged } from '../../shared/model'
import { changedFields } from '../activity/changes'
import { insertActivity } from '../activity/queries'
import { removeProjectFiles } from '../attachments/storage'
import { canOnProject, isAdmin, requirePermission } from '../authz/policy'
import { authorizeProject } from '../authz/service'
import type { AnswerInTransaction } from '../idempotency/middleware'
import type { NewProject, Project, ProjectChanges, ProjectListQuery } from './model'
import {
  countProjects,
  deleteProjectAttachments,
  deleteProject as deleteProjectRow,
  insertMember,
  insertProject,
  listProjects as listProjectRows,
  PROJECT_FIELDS,
  selectProjectForUpdate,
  selectProjectView,
  updateProject as updateProjectRow,
} from './queries'
import { removeStoredFiles } from './stored-files'

/** A real calendar date (2026-02-30 and year 0 pass the format but not PostgreSQL). */
function isCalendarDate(value: string) {
  const date = new Date(`${value}T00:00:00Z`)
  return (
    value >= '0001-01-01' &&
    !Number.isNaN(date.getTime()) &&
    date.toISOString().slice(0, 10) === value
  )
}

/** Both dates must exist, and a project cannot be due before it starts. */
function checkDates(start: string | null | undefined, due: string | null | undefined) {
  const errors = []
  if (start && !isCalendarDate(start))
    errors.push({ path: '/start_date', message: 'is not a calendar date' })
  if (due && !isCalendarDate(due))
    errors.push({ path: '/due_date', message: 'is not a calendar date' })
  if (errors.length === 0 && start && due && due < start)
    errors.push({ path: '/due_date', message: 'must not be before start_date' })
  if (errors.length > 0) throw invalid(errors)
}

export async function listProjects(ctx: AppContext, principal: Principal, query: ProjectListQuery) {
  requirePermission(principal, 'projects.read')
  if (query.all && !isAdmin(principal)) throw forbidden('Only admins may list every project')
  const filter = {
    userId: principal.userId,
    all: query.all === true,
    projectIds: principal.token?.projectIds,
    status: query.status,
    search: query.search?.trim() || undefined,
  }
  return paged(
    query,
    (limit, offset) => listProjectRows(ctx.sql, filter, limit, offset),
    () => countProjects(ctx.sql, filter),
  )
}

/** One statement: the project, the caller's role and the task counts; 404 / 403 from the same row. */
export async function getProject(ctx: AppContext, principal: Principal, projectId: string) {
  const project = await selectProjectView(ctx.sql, projectId, principal.userId)
  if (!project) throw notFound('No such project')
  if (!canOnProject(principal, 'project.read', project.member_role ?? undefined, project.id))
    throw forbidden(
      project.member_role
        ? 'Your role does not allow this'
        : 'You are not a member of this project',
    )
  return project
}

/** Creates the project and makes the caller its owner, in one transaction. */
/** `finish` (answerInTransaction) runs last in the transaction, storing the idempotent answer. */
export async function createProject(
  ctx: AppContext,
  principal: Principal,
  input: NewProject,
  finish?: AnswerInTransaction<Project>,
) {
  requirePermission(principal, 'projects.write')
  // A new project is outside any list a token was limited to.
  if (principal.token?.projectIds)
    throw forbidden('This token is limited to its projects and cannot create one')
  checkDates(input.start_date, input.due_date)
  return ctx.sql.begin(async (tx) => {
    const project = await insertProject(tx, input, principal.userId)
    await insertMember(tx, project.id, principal.userId, 'owner')
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: project.id,
      action: 'project.created',
      entity_type: 'project',
      entity_id: project.id,
      details: { name: project.name, status: project.status, priority: project.priority },
    })
    const view = (await selectProjectView(tx, project.id, principal.userId)) as Project
    await finish?.(tx, view)
    return view
  })
}

/** Partial update; the activity entry lists the old and new value of each changed field. */
export async function updateProject(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  changes: ProjectChanges,
) {
  await ctx.sql.begin(async (tx) => {
    await authorizeProject(tx, principal, projectId, 'project.update')
    const before = await selectProjectForUpdate(tx, projectId)
    if (!before) throw notFound('No such project')
    checkDates(
      changes.start_date === undefined ? before.start_date : changes.start_date,
      changes.due_date === undefined ? before.due_date : changes.due_date,
    )
    const present = Object.values(changes).some((v) => v !== undefined)
    if (!present) return
    const entering = changes.status === 'completed' && before.status !== 'completed'
    const leaving =
      changes.status !== undefined &&
      changes.status !== 'completed' &&
      before.status === 'completed'
    const after = await updateProjectRow(
      tx,
      projectId,
      changes,
      entering ? 'set' : leaving ? 'clear' : undefined,
    )
    const details = changedFields(before, after, PROJECT_FIELDS)
    if (Object.keys(details).length === 0) return
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: projectId,
      action: 'project.updated',
      entity_type: 'project',
      entity_id: projectId,
      details,
    })
    await recordEvent(tx, {
      project_id: projectId,
      event: 'project.updated',
      data: { project: after, changes: details, actor_id: principal.userId },
    })
  })
  return getProject(ctx, principal, projectId)
}

/**
 * Deletes the project with its tasks, comments and attachments (owner or admin). The attachment
 * files are removed after the commit, so a failed delete leaves every file in place.
 */
export async function deleteProject(ctx: AppContext, principal: Principal, projectId: string) {
  const files = await ctx.sql.begin(async (tx) => {
    await authorizeProject(tx, principal, projectId, 'project.delete')
    // The lock makes new tasks wait for this delete (and then fail), so none is left behind.
    const project = await selectProjectForUpdate(tx, projectId, 'delete')
    if (!project) throw notFound('No such project')
    const files = await deleteProjectAttachments(tx, projectId)
    await deleteProjectRow(tx, projectId)
    // The project's own feed goes with it; this entry stays in the system log (project_id null).
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: null,
      action: 'project.deleted',
      entity_type: 'project',
      entity_id: projectId,
      details: { name: project.name, attachments_removed: files.length },
    })
    return [...files]
  })
  await removeStoredFiles(ctx.config, ctx.log, files)
  await removeProjectFiles(ctx.config, projectId)
}
