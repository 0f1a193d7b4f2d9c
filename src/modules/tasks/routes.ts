import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { answerInTransaction } from '../idempotency/middleware'
import { listTasksForUser } from './list-service'
import { IfMatchHeaders, type Task, TaskList, TaskModel } from './model'
import { etagOf } from './rules'
import { changeTask, createTask, deleteTask, getTask } from './service'

const IF_MATCH =
  'Send `If-Match` with the task’s `ETag` to change only the version you read: a stale one answers 412 and changes nothing. The answer carries the new `ETag`.'

// A fresh object per route: Elysia writes resolved hooks into the options it is given.
const listRoute = (summary: string) => ({
  auth: true as const,
  query: TaskModel.listQuery,
  response: { 200: TaskList, ...problems(401, 403, 422) },
  detail: {
    summary,
    description:
      'Only tasks of projects the caller is a member of (admins too, unless they send `all=true`). `status`, `priority` take one value or a comma list; `tags` (comma list or repeated) match when a task has all of them; `due_date_from`/`due_date_to` are inclusive (a date means the whole UTC day); `search` is full text over title and description, best match first unless `sort` is given. `pagination.next_cursor`, sent back as `cursor`, walks the list by keyset (stable while tasks are added); `total` and `pages` are then null.',
  },
})

const updateRoute = () => ({
  auth: true as const,
  params: IdParams,
  headers: IfMatchHeaders,
  body: TaskModel.update,
  response: { 200: TaskModel.task, ...problems(400, 401, 403, 404, 409, 412, 413, 415, 422) },
  detail: {
    summary: 'Edit a task (partial: absent fields stay, null clears)',
    description: `Setting \`status\` to \`done\` sets \`completed_at\`; leaving \`done\` clears it. A new assignee must be a member of the project and is notified. ${IF_MATCH}`,
  },
})

type SetHeaders = { headers: Record<string, unknown> }
const withEtag = <T extends { version: number }>(set: SetHeaders, task: T) => {
  set.headers.etag = etagOf(task.version)
  return task
}

export const taskRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/tasks', detail: { tags: ['Tasks'] } })
    .use(guard)
    .get(
      '',
      ({ principal, query }) => listTasksForUser(ctx, principal, query),
      listRoute('List tasks'),
    )
    .get(
      '/search',
      ({ principal, query }) => listTasksForUser(ctx, principal, query),
      listRoute('Search tasks (the same as GET /tasks)'),
    )
    .post(
      '',
      async ({ principal, body, set, request }) => {
        const respond = (task: Task) =>
          created(set, `/api/v1/tasks/${task.id}`, withEtag(set, task))
        return respond(
          await createTask(ctx, principal, body, answerInTransaction(request, set, respond)),
        )
      },
      {
        auth: true,
        body: TaskModel.create,
        response: { 201: TaskModel.task, ...problems(400, 401, 403, 413, 415, 422) },
        detail: {
          summary: 'Create a task',
          description:
            'Needs `tasks.write` and a project role of owner, manager or member. The assignee must be a member of the project and is notified; a missing project is a 422 on `/project_id`.',
        },
      },
    )
    .get(
      '/:id',
      async ({ principal, params, set }) => withEtag(set, await getTask(ctx, principal, params.id)),
      {
        auth: true,
        params: IdParams,
        response: { 200: TaskModel.task, ...problems(401, 403, 404, 422) },
        detail: { summary: 'A task, with its `ETag`', description: 'Any member of the project.' },
      },
    )
    .patch(
      '/:id',
      async ({ principal, params, body, headers, set }) =>
        withEtag(set, await changeTask(ctx, principal, params.id, body, headers['if-match'])),
      updateRoute(),
    )
    .put(
      '/:id',
      async ({ principal, params, body, headers, set }) =>
        withEtag(set, await changeTask(ctx, principal, params.id, body, headers['if-match'])),
      updateRoute(),
    )
    .delete(
      '/:id',
      ({ principal, params, headers, set }) =>
        deleteTask(ctx, principal, params.id, headers['if-match']).then(() => noContent(set)),
      {
        auth: true,
        params: IdParams,
        headers: IfMatchHeaders,
        response: { 204: NoContent, ...problems(401, 403, 404, 412, 422) },
        detail: {
          summary: 'Delete a task',
          description:
            'The task’s creator, a project owner or manager, or an admin; other members get 403. Its comments and attachments go with it. `If-Match` is honoured as on PATCH.',
        },
      },
    )
    .put(
      '/:id/assign',
      async ({ principal, params, body, headers, set }) =>
        withEtag(
          set,
          await changeTask(ctx, principal, params.id, body, headers['if-match'], 'task.assigned'),
        ),
      {
        auth: true,
        params: IdParams,
        headers: IfMatchHeaders,
        body: TaskModel.assign,
        response: { 200: TaskModel.task, ...problems(400, 401, 403, 404, 409, 412, 413, 415, 422) },
        detail: {
          summary: 'Assign a task (null unassigns)',
          description: `The assignee must be a member of the project (422 on \`/assignee_id\`) and is notified, unless they assigned themselves. ${IF_MATCH}`,
        },
      },
    )
    .put(
      '/:id/status',
      async ({ principal, params, body, headers, set }) =>
        withEtag(
          set,
          await changeTask(
            ctx,
            principal,
            params.id,
            body,
            headers['if-match'],
            'task.status_changed',
          ),
        ),
      {
        auth: true,
        params: IdParams,
        headers: IfMatchHeaders,
        body: TaskModel.status,
        response: { 200: TaskModel.task, ...problems(400, 401, 403, 404, 409, 412, 413, 415, 422) },
        detail: {
          summary: 'Change a task’s status',
          description: `\`done\` sets \`completed_at\` and notifies the creator and the assignee; leaving \`done\` clears it. ${IF_MATCH}`,
        },
      },
    )
