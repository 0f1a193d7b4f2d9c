import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { answerInTransaction } from '../idempotency/middleware'
import { type Project, ProjectList, ProjectModel } from './model'
import { createProject, deleteProject, getProject, listProjects, updateProject } from './service'

// A fresh object per route: Elysia writes resolved hooks into the options it is given.
const updateRoute = (method: string) => ({
  auth: true as const,
  params: IdParams,
  body: ProjectModel.update,
  response: { 200: ProjectModel.project, ...problems(400, 401, 403, 404, 415, 422) },
  detail: {
    summary: `Edit a project (${method}; partial: absent fields stay, null clears)`,
    description:
      'Owner, manager or admin. Setting `status` to `completed` stamps `completed_at`; leaving it clears it. `due_date` may not be before `start_date`.',
  },
})

export const projectRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ name: 'project-routes', prefix: '/projects', detail: { tags: ['Projects'] } })
    .use(guard)
    .get('', ({ principal, query }) => listProjects(ctx, principal, query), {
      auth: true,
      query: ProjectModel.listQuery,
      response: { 200: ProjectList, ...problems(401, 403, 422) },
      detail: {
        summary: 'The caller’s projects, newest first',
        description:
          '`status` and `search` (part of the name or description) narrow the list. Admins may add `all=true` for every project (anyone else: 403).',
      },
    })
    .post(
      '',
      async ({ principal, body, set, request }) => {
        const respond = (p: Project) => created(set, `/api/v1/projects/${p.id}`, p)
        return respond(
          await createProject(ctx, principal, body, answerInTransaction(request, set, respond)),
        )
      },
      {
        auth: true,
        body: ProjectModel.create,
        response: { 201: ProjectModel.project, ...problems(400, 401, 403, 415, 422) },
        detail: {
          summary: 'Create a project; the caller becomes its owner',
          description:
            'Needs projects.write. `id`, `owner_id` and timestamps in the body are ignored.',
        },
      },
    )
    .get('/:id', ({ principal, params }) => getProject(ctx, principal, params.id), {
      auth: true,
      params: IdParams,
      response: { 200: ProjectModel.project, ...problems(401, 403, 404, 422) },
      detail: { summary: 'A project, with the caller’s role and its task counts (members only)' },
    })
    .patch(
      '/:id',
      ({ principal, params, body }) => updateProject(ctx, principal, params.id, body),
      updateRoute('PATCH'),
    )
    .put(
      '/:id',
      ({ principal, params, body }) => updateProject(ctx, principal, params.id, body),
      updateRoute('PUT'),
    )
    .delete(
      '/:id',
      ({ principal, params, set }) =>
        deleteProject(ctx, principal, params.id).then(() => noContent(set)),
      {
        auth: true,
        params: IdParams,
        response: { 204: NoContent, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'Delete a project with its tasks, comments and attachment files',
          description: 'The owner or an admin.',
        },
      },
    )
