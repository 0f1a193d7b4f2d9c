import type { Executor } from '../../db'
import type { Keyset } from '../../shared/keyset'
import type { Comment } from './model'

/** A task's comments, oldest first, with their authors' usernames; `after` continues a walk. */
export async function listComments(
  db: Executor,
  taskId: string,
  options: { after?: Keyset; limit: number; offset: number },
) {
  return db<(Comment & { sort_at: string })[]>`
    select
      c.id, c.task_id, c.user_id, u.username, c.content, c.created_at, c.updated_at,
      to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as sort_at
    from task_comments c
    join users u on u.id = c.user_id
    where c.task_id = ${taskId}
      ${options.after ? db`and (c.created_at, c.id) > (${options.after.at}::timestamptz, ${options.after.id}::uuid)` : db``}
    order by c.created_at, c.id
    limit ${options.limit + 1}
    offset ${options.after ? 0 : options.offset}
  `
}

export async function countComments(db: Executor, taskId: string) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from task_comments
    where task_id = ${taskId}
  `
  return row?.total ?? 0
}

export async function insertComment(
  db: Executor,
  comment: { task_id: string; user_id: string; content: string },
) {
  const [row] = await db<Comment[]>`
    with c as (
      insert into task_comments ${db(comment, 'task_id', 'user_id', 'content')}
      returning id, task_id, user_id, content, created_at, updated_at
    )
    select c.id, c.task_id, c.user_id, u.username, c.content, c.created_at, c.updated_at
    from c
    join users u on u.id = c.user_id
  `
  if (!row) throw new Error('comment insert returned nothing')
  return row
}

/** A comment of the given task, locked until the transaction ends. */
export async function selectCommentForUpdate(db: Executor, taskId: string, commentId: string) {
  const [row] = await db<{ id: string; user_id: string; content: string }[]>`
    select id, user_id, content
    from task_comments
    where id = ${commentId}
      and task_id = ${taskId}
    for update
  `
  return row
}

export async function updateCommentContent(db: Executor, commentId: string, content: string) {
  const [row] = await db<Comment[]>`
    with c as (
      update task_comments
      set content = ${content}, updated_at = now()
      where id = ${commentId}
      returning id, task_id, user_id, content, created_at, updated_at
    )
    select c.id, c.task_id, c.user_id, u.username, c.content, c.created_at, c.updated_at
    from c
    join users u on u.id = c.user_id
  `
  if (!row) throw new Error('comment update returned nothing')
  return row
}

export async function deleteComment(db: Executor, commentId: string) {
  await db`
    delete from task_comments
    where id = ${commentId}
  `
}

/**
 * What a comment's notifications need to know about its task: the title, and its creator and
 * assignee while they are still members of the project (null otherwise).
 */
export async function selectTaskParticipants(db: Executor, taskId: string) {
  const [row] = await db<
    { title: string; created_by: string | null; assignee_id: string | null }[]
  >`
    select
      t.title,
      (select pm.user_id from project_members pm
        where pm.project_id = t.project_id and pm.user_id = t.created_by) as created_by,
      (select pm.user_id from project_members pm
        where pm.project_id = t.project_id and pm.user_id = t.assignee_id) as assignee_id
    from tasks t
    where t.id = ${taskId}
  `
  return row
}

/** The active members of a project among the given usernames (compared regardless of case). */
export async function selectMembersByUsername(
  db: Executor,
  projectId: string,
  usernames: string[],
) {
  if (usernames.length === 0) return []
  return db<{ id: string; username: string }[]>`
    select u.id, u.username
    from project_members pm
    join users u on u.id = pm.user_id
    where pm.project_id = ${projectId}
      and u.is_active
      and lower(u.username) = any(${usernames.map((n) => n.toLowerCase())}::text[])
  `
}
