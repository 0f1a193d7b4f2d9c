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

/** Which entries a feed shows; every field present narrows it. */
export type ActivityScope = {
  projectId?: string
  /** Entries about the task itself and those that name it in `details.task_id` (comments ...). */
  taskId?: string
  userId?: string
  action?: string
  entityType?: string
}

/** A position in a newest-first feed: the entry's time in microseconds since 1970, and its id. */
export type ActivityPosition = { us: string; id: string }

const COLUMNS = [
  'id',
  'user_id',
  'project_id',
  'action',
  'entity_type',
  'entity_id',
  'details',
  'created_at',
]

/**
 * The rows a feed reads from. A task's feed is the union of two index lookups (the task's own
 * entries, and those naming it in details.task_id): an `or` of both made the planner walk the
 * whole log in time order instead.
 */
function feedSource(db: Executor, scope: ActivityScope) {
  if (!scope.taskId) return db`activity_log a`
  return db`
    (
      select ${db(COLUMNS)}
      from activity_log
      where entity_type = 'task'
        and entity_id = ${scope.taskId}
      union all
      select ${db(COLUMNS)}
      from activity_log
      where details ->> 'task_id' = ${scope.taskId}
        and not (entity_type = 'task' and entity_id = ${scope.taskId})
    ) a
  `
}

function scopeFilter(db: Executor, scope: ActivityScope) {
  return db`
    where true
      ${scope.projectId ? db`and a.project_id = ${scope.projectId}` : db``}
      ${scope.userId ? db`and a.user_id = ${scope.userId}` : db``}
      ${scope.action ? db`and a.action = ${scope.action}` : db``}
      ${scope.entityType ? db`and a.entity_type = ${scope.entityType}` : db``}
  `
}

/**
 * A page of a feed, newest first, from an offset or after a keyset position. The position is
 * compared in whole microseconds, so it is exact where a millisecond timestamp would not be.
 */
export async function listActivity(
  db: Executor,
  scope: ActivityScope,
  page: { limit: number; offset: number; after?: ActivityPosition },
) {
  const after = page.after
  return db<(ActivityEntryRow & { position_us: string })[]>`
    select
      a.id, a.user_id, u.username, a.action, a.entity_type, a.entity_id, a.project_id, a.details,
      a.created_at,
      -- Whole seconds and the microseconds within them: exact on every version (13 has no
      -- numeric extract).
      (
        extract(epoch from date_trunc('second', a.created_at))::bigint * 1000000
        + extract(microseconds from a.created_at)::bigint % 1000000
      )::text as position_us
    from ${feedSource(db, scope)}
    join users u on u.id = a.user_id
    ${scopeFilter(db, scope)}
      ${
        after
          ? db`and (a.created_at, a.id) < (
              timestamptz 'epoch' + ${after.us}::bigint * interval '1 microsecond', ${after.id}::uuid
            )`
          : db``
      }
    order by a.created_at desc, a.id desc
    limit ${page.limit}
    ${after ? db`` : db`offset ${page.offset}`}
  `
}

export async function countActivity(db: Executor, scope: ActivityScope) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from ${feedSource(db, scope)}
    ${scopeFilter(db, scope)}
  `
  return row?.total ?? 0
}

type ActivityEntryRow = {
  id: string
  user_id: string
  username: string
  action: string
  entity_type: string
  entity_id: string
  project_id: string | null
  details: Record<string, unknown> | null
  created_at: string
}
