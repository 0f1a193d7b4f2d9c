import type { Executor } from '../../db'
import type { Keyset } from '../../shared/keyset'

export type NotificationType =
  | 'task_assigned'
  | 'task_completed'
  | 'comment_added'
  | 'mentioned'
  | 'project_member_added'
  | 'webhook_disabled'

export type NewNotification = {
  user_id: string
  type: NotificationType
  title: string
  message: string
  entity_type: 'task' | 'project' | 'comment' | 'webhook'
  entity_id: string
}

/**
 * Stores notifications inside the transaction of the change that causes them; the caller has
 * already left out the actor (nobody is notified of their own action). Returns the stored rows.
 */
export async function insertNotifications(db: Executor, rows: NewNotification[]) {
  if (rows.length === 0) return []
  return db<(NewNotification & { id: string; is_read: boolean; created_at: string })[]>`
    insert into notifications ${db(rows, 'user_id', 'type', 'title', 'message', 'entity_type', 'entity_id')}
    returning id, user_id, title, message, type, entity_type, entity_id, is_read, created_at
  `
}

const NOTIFICATION_COLUMNS = [
  'id',
  'title',
  'message',
  'type',
  'entity_type',
  'entity_id',
  'is_read',
  'created_at',
] as const

/**
 * The project a notification is about, found through its entity (a task's, a comment's task's, a
 * webhook's project, or the project itself); null when the entity is gone or names no project.
 */
const projectOf = (db: Executor) => db`
  case n.entity_type
    when 'project' then n.entity_id
    when 'task' then (select t.project_id from tasks t where t.id = n.entity_id)
    when 'comment' then (
      select t.project_id from task_comments c join tasks t on t.id = c.task_id where c.id = n.entity_id
    )
    when 'webhook' then (select w.project_id from webhooks w where w.id = n.entity_id)
  end
`

/**
 * Limits a query on `notifications n` to the projects of an API token limited to some (undefined:
 * no limit). A notification whose project cannot be found is outside every limited token's reach.
 */
const inProjects = (db: Executor, projectIds: readonly string[] | undefined) =>
  projectIds ? db`and (${projectOf(db)}) = any(${projectIds as string[]}::uuid[])` : db``

type StoredNotification = {
  id: string
  title: string
  message: string
  type: string
  entity_type: string | null
  entity_id: string | null
  is_read: boolean
  created_at: string
}

/** A user's notifications, newest first; `before` continues a keyset walk. */
export async function listNotifications(
  db: Executor,
  userId: string,
  options: {
    unreadOnly: boolean
    before?: Keyset
    limit: number
    offset: number
    projectIds?: readonly string[]
  },
) {
  return db<(StoredNotification & { sort_at: string })[]>`
    select
      ${db(NOTIFICATION_COLUMNS)},
      to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_at
    from notifications n
    where user_id = ${userId}
      ${inProjects(db, options.projectIds)}
      ${options.unreadOnly ? db`and not is_read` : db``}
      ${options.before ? db`and (created_at, id) < (${options.before.at}::timestamptz, ${options.before.id}::uuid)` : db``}
    order by created_at desc, id desc
    limit ${options.limit + 1}
    offset ${options.before ? 0 : options.offset}
  `
}

/** How many notifications match the list's filter, and how many are unread, in one pass. */
export async function countNotifications(
  db: Executor,
  userId: string,
  unreadOnly: boolean,
  projectIds?: readonly string[],
) {
  const [row] = await db<{ total: number; unread: number }[]>`
    select
      count(*) filter (where ${!unreadOnly} or not is_read)::int as total,
      count(*) filter (where not is_read)::int as unread
    from notifications n
    where user_id = ${userId}
      ${inProjects(db, projectIds)}
  `
  return row ?? { total: 0, unread: 0 }
}

export async function countUnreadNotifications(
  db: Executor,
  userId: string,
  projectIds?: readonly string[],
) {
  const [row] = await db<{ count: number }[]>`
    select count(*)::int as count
    from notifications n
    where user_id = ${userId}
      and not is_read
      ${inProjects(db, projectIds)}
  `
  return row?.count ?? 0
}

/** The project a stored notification is about (see projectOf); null when none or gone. */
export async function selectNotificationProject(db: Executor, id: string) {
  const [row] = await db<{ project_id: string | null }[]>`
    select (${projectOf(db)})::text as project_id
    from notifications n
    where n.id = ${id}
  `
  return row?.project_id ?? null
}

/** Marks one of the user's notifications read; undefined when the user has no such notification. */
export async function markNotificationRead(
  db: Executor,
  userId: string,
  id: string,
  projectIds?: readonly string[],
) {
  const [row] = await db<StoredNotification[]>`
    update notifications n
    set is_read = true
    where id = ${id}
      and user_id = ${userId}
      ${inProjects(db, projectIds)}
    returning ${db(NOTIFICATION_COLUMNS)}
  `
  return row
}

export async function markAllNotificationsRead(
  db: Executor,
  userId: string,
  projectIds?: readonly string[],
) {
  await db`
    update notifications n
    set is_read = true
    where user_id = ${userId}
      and not is_read
      ${inProjects(db, projectIds)}
  `
}

/** Deletes one of the user's notifications; false when the user has no such notification. */
export async function deleteNotification(
  db: Executor,
  userId: string,
  id: string,
  projectIds?: readonly string[],
) {
  const rows = await db`
    delete from notifications n
    where id = ${id}
      and user_id = ${userId}
      ${inProjects(db, projectIds)}
    returning id
  `
  return rows.length > 0
}
