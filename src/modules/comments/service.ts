import type { AppContext, Principal } from '../../context'
import type { Executor } from '../../db'
import { forbidden, notFound } from '../../problems'
import { announceNotifications, recordEvent } from '../../realtime/events'
import { cursorPagination, decodeCursor, pageOf } from '../../shared/keyset'
import { changedFields } from '../activity/changes'
import { insertActivity } from '../activity/queries'
import { canOnProject } from '../authz/policy'
import { authorizeTask, taskDeletedMeanwhile } from '../authz/service'
import type { AnswerInTransaction } from '../idempotency/middleware'
import { insertNotifications, type NewNotification } from '../notifications/queries'
import { mentionedUsernames } from './mentions'
import type { Comment, CommentListQuery } from './model'
import {
  countComments,
  deleteComment,
  insertComment,
  listComments,
  selectCommentForUpdate,
  selectMembersByUsername,
  selectTaskParticipants,
  updateCommentContent,
} from './queries'

const noSuchComment = () => notFound('No such comment on this task')

export async function listTaskComments(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  query: CommentListQuery,
) {
  await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  const page = query.page ?? 1
  const limit = query.limit ?? 20
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  const [rows, total] = await Promise.all([
    listComments(ctx.sql, taskId, { after, limit, offset: (page - 1) * limit }),
    after ? null : countComments(ctx.sql, taskId),
  ])
  const { data, next } = pageOf(rows, limit)
  return { data, pagination: cursorPagination(page, limit, total, next) }
}

/**
 * Adds a comment, its activity entry and its notifications in one transaction; `finish`
 * (answerInTransaction) runs last in it, storing the idempotent answer.
 */
export async function addComment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  content: string,
  finish?: AnswerInTransaction<Comment>,
) {
  const access = await authorizeTask(ctx.sql, principal, taskId, 'task.write')
  const added = ctx.sql.begin(async (tx) => {
    const comment = await insertComment(tx, {
      task_id: taskId,
      user_id: principal.userId,
      content,
    })
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: access.projectId,
      action: 'comment.created',
      entity_type: 'comment',
      entity_id: comment.id,
      details: { task_id: taskId },
    })
    await notifyAboutComment(tx, access.projectId, comment, { mentionsOnly: false })
    await recordEvent(tx, {
      project_id: access.projectId,
      event: 'comment.created',
      data: { comment, task_id: taskId, actor_id: principal.userId },
    })
    await finish?.(tx, comment)
    return comment
  })
  return added.catch((error) => {
    throw taskDeletedMeanwhile(error, 'task_comments_task_id_fkey')
  })
}

/** Only the author edits a comment, and only while they may still write in the project. */
export async function editComment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  commentId: string,
  content: string,
) {
  const access = await authorizeTask(ctx.sql, principal, taskId, 'task.write')
  return ctx.sql.begin(async (tx) => {
    const before = await selectCommentForUpdate(tx, taskId, commentId)
    if (!before) throw noSuchComment()
    if (before.user_id !== principal.userId)
      throw forbidden('Only the author of a comment may edit it')
    const comment = await updateCommentContent(tx, commentId, content)
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: access.projectId,
      action: 'comment.updated',
      entity_type: 'comment',
      entity_id: commentId,
      details: { task_id: taskId, ...changedFields(before, comment, ['content']) },
    })
    await notifyAboutComment(tx, access.projectId, comment, {
      mentionsOnly: true,
      alreadyMentioned: mentionedUsernames(before.content),
    })
    return comment
  })
}

/** The author, a project owner or manager (task.moderate), or an admin deletes a comment. */
export async function removeComment(
  ctx: AppContext,
  principal: Principal,
  taskId: string,
  commentId: string,
) {
  const access = await authorizeTask(ctx.sql, principal, taskId, 'task.read')
  await ctx.sql.begin(async (tx) => {
    const comment = await selectCommentForUpdate(tx, taskId, commentId)
    if (!comment) throw noSuchComment()
    const mayModerate = canOnProject(principal, 'task.moderate', access.role, access.projectId)
    if (comment.user_id !== principal.userId && !mayModerate)
      throw forbidden('Only the author, a project owner or manager, or an admin may delete it')
    await deleteComment(tx, commentId)
    await insertActivity(tx, {
      user_id: principal.userId,
      project_id: access.projectId,
      action: 'comment.deleted',
      entity_type: 'comment',
      entity_id: commentId,
      details: { task_id: taskId, author_id: comment.user_id },
    })
  })
}

/**
 * Notifications for a new or edited comment. Mentioned project members get `mentioned`; the
 * task's creator and assignee get `comment_added` unless they are mentioned (one notification
 * per person per comment: the more specific one). The author is never notified. An edit only
 * notifies members it newly mentions.
 */
async function notifyAboutComment(
  tx: Executor,
  projectId: string,
  comment: Comment,
  options: { mentionsOnly: boolean; alreadyMentioned?: string[] },
) {
  const task = await selectTaskParticipants(tx, comment.task_id)
  if (!task) return
  const already = new Set(options.alreadyMentioned ?? [])
  const names = mentionedUsernames(comment.content).filter((n) => !already.has(n))
  const mentioned = (await selectMembersByUsername(tx, projectId, names)).filter(
    (m) => m.id !== comment.user_id && !already.has(m.username.toLowerCase()),
  )
  const notified = new Set(mentioned.map((m) => m.id))
  const rows: NewNotification[] = mentioned.map((m) => ({
    user_id: m.id,
    type: 'mentioned',
    title: `${comment.username} mentioned you`,
    message: `${comment.username} mentioned you in a comment on “${task.title}”`,
    entity_type: 'task',
    entity_id: comment.task_id,
  }))
  if (!options.mentionsOnly)
    for (const userId of [task.created_by, task.assignee_id]) {
      if (!userId || userId === comment.user_id || notified.has(userId)) continue
      notified.add(userId)
      rows.push({
        user_id: userId,
        type: 'comment_added',
        title: 'New comment',
        message: `${comment.username} commented on “${task.title}”`,
        entity_type: 'task',
        entity_id: comment.task_id,
      })
    }
  await announceNotifications(tx, await insertNotifications(tx, rows))
}
