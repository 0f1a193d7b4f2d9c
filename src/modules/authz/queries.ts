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
