import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { answerInTransaction } from '../idempotency/middleware'
import { type Comment, CommentList, CommentModel } from './model'
import { addComment, editComment, listTaskComments, removeComment } from './service'

// A fresh object per route: Elysia writes resolved hooks into the options it is given.
const editRoute = () => ({
  auth: true as const,
  params: CommentModel.params,
  body: CommentModel.write,
  response: { 200: CommentModel.comment, ...problems(400, 401, 403, 404, 415, 422) },
  detail: {
    summary: 'Edit a comment (its author only)',
    description:
      'Needs `task.write` in the project and authorship. Members newly `@mentioned` by the edit are notified; those mentioned before are not notified again.',
  },
})

export const commentRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/tasks', detail: { tags: ['Comments'] } })
    .use(guard)
    .get(
      '/:id/comments',
      ({ principal, params, query }) => listTaskComments(ctx, principal, params.id, query),
      {
        auth: true,
        params: IdParams,
        query: CommentModel.listQuery,
        response: { 200: CommentList, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'A task’s comments, oldest first',
          description:
            'Any project member. Pages by `page`/`limit`, or by keyset with `cursor` (then `total` and `pages` are null).',
        },
      },
    )
    .post(
      '/:id/comments',
      async ({ principal, params, body, set, request }) => {
        const respond = (comment: Comment) =>
          created(set, `/api/v1/tasks/${params.id}/comments/${comment.id}`, comment)
        return respond(
          await addComment(
            ctx,
            principal,
            params.id,
            body.content,
            answerInTransaction(request, set, respond),
          ),
        )
      },
      {
        auth: true,
        params: IdParams,
        body: CommentModel.write,
        response: { 201: CommentModel.comment, ...problems(400, 401, 403, 404, 415, 422) },
        detail: {
          summary: 'Comment on a task',
          description:
            'Needs `task.write` (project owner, manager or member). The task’s creator and assignee get `comment_added`; `@username` mentions of project members get `mentioned` instead (one notification per person per comment; never the author).',
        },
      },
    )
    .patch(
      '/:id/comments/:comment_id',
      ({ principal, params, body }) =>
        editComment(ctx, principal, params.id, params.comment_id, body.content),
      editRoute(),
    )
    .put(
      '/:id/comments/:comment_id',
      ({ principal, params, body }) =>
        editComment(ctx, principal, params.id, params.comment_id, body.content),
      editRoute(),
    )
    .delete(
      '/:id/comments/:comment_id',
      ({ principal, params, set }) =>
        removeComment(ctx, principal, params.id, params.comment_id).then(() => noContent(set)),
      {
        auth: true,
        params: CommentModel.params,
        response: { 204: NoContent, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'Delete a comment',
          description: 'Its author, a project owner or manager, or an admin.',
        },
      },
    )
