import type { Principal } from '../../context'
import type { Executor } from '../../db'
import { forbidden, notFound } from '../../problems'
import { canOnProject, type ProjectAction } from './policy'
import { selectProjectAccess, selectTaskAccess } from './queries'
import { requireTokenProject } from './token-scopes'

/**
 * Throws 404 when the project does not exist and 403 when the caller may not do `action` in it;
 * returns the caller's project role (undefined for an admin who is not a member).
 */
export async function authorizeProject(
  db: Executor,
  principal: Principal,
  projectId: string,
  action: ProjectAction,
) {
  const access = await selectProjectAccess(db, projectId, principal.userId)
  if (!access) throw notFound('No such project')
  requireTokenProject(principal, projectId)
  if (!canOnProject(principal, action, access.role, projectId))
    throw forbidden(
      access.role
        ? 'Your project role does not allow this'
        : 'You are not a member of this project',
    )
  return access.role
}

/**
 * Throws 404 when the task does not exist and 403 when the caller may not do `action` in its
 * project; returns the task's project, creator and the caller's role there.
 */
export async function authorizeTask(
  db: Executor,
  principal: Principal,
  taskId: string,
  action: ProjectAction,
) {
  const access = await selectTaskAccess(db, taskId, principal.userId)
  if (!access) throw notFound('No such task')
  requireTokenProject(principal, access.projectId)
  if (!canOnProject(principal, action, access.role, access.projectId))
    throw forbidden(
      access.role
        ? 'Your project role does not allow this'
        : 'You are not a member of this task’s project',
    )
  return access
}

/**
 * A task deleted after authorizeTask read it and before a row naming it was inserted: the row's
 * foreign key (`constraint`) refuses it, which is the task's 404, not a conflict.
 */
export function taskDeletedMeanwhile(error: unknown, constraint: string): unknown {
  const pg = error as { code?: unknown; constraint_name?: unknown }
  return pg?.code === '23503' && pg.constraint_name === constraint
    ? notFound('No such task')
    : error
}
