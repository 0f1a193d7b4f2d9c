import type postgres from 'postgres'
import type { Executor } from '../../db'

/** One activity entry; `details` holds what changed, as `{ field: { old, new } }` for updates. */
export type NewActivity = {
  user_id: string
  /** The project the entity lives in; null only for entries that outlive their project. */
  project_id: string | null
  /** `noun.verb`, as events are named: `task.created`, `member.removed` ... */
  action: string
  entity_type: 'project' | 'member' | 'task' | 'comment' | 'attachment' | 'user'
  entity_id: string
  details?: Record<string, unknown> | null
}

/** Writes one activity row; call it inside the transaction of the change it records. */
export async function insertActivity(db: Executor, entry: NewActivity) {
  await db`
    insert into activity_log (user_id, project_id, action, entity_type, entity_id, details)
    values (
      ${entry.user_id}, ${entry.project_id}, ${entry.action}, ${entry.entity_type},
      ${entry.entity_id}, ${entry.details ? db.json(entry.details as postgres.JSONValue) : null}
    )
  `
}
