import type { Executor } from '../../db'
import type { ProjectRole } from './policy'

/** The project's existence and the user's role in it (undefined for non-members). */
export async function selectProjectAccess(db: Executor, projectId: string, userId: string) {
  const [row] = await db<{ role: ProjectRole | null }[]>`
    select pm.role
    from projects p
    left join project_members pm on pm.project_id = p.id and pm.user_id = ${userId}
    where p.id = ${projectId}
  `
  return row ? { role: row.role ?? undefined } : undefined
}

/** A task's project, creator and the user's role in that project (undefined for non-members). */
export async function selectTaskAccess(db: Executor, taskId: string, userId: string) {
  const [row] = await db<{ project_id: string; created_by: string; role: ProjectRole | null }[]>`
    select t.project_id, t.created_by, pm.role
    from tasks t
    left join project_members pm on pm.project_id = t.project_id and pm.user_id = ${userId}
    where t.id = ${taskId}
  `
  return row
    ? { projectId: row.project_id, createdBy: row.created_by, role: row.role ?? undefined }
    : undefined
}
