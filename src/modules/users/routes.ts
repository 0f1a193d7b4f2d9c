import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { UserList, UserModel } from './model'
import { changePassword, getMe, getUserProfile, listUsers, updateMe } from './service'

// A fresh object per route: Elysia writes resolved hooks into the options it is given.
const updateMeRoute = () => ({
  auth: true as const,
  body: UserModel.updateMe,
  response: { 200: UserModel.user, ...problems(400, 401, 409, 415, 422) },
  detail: { summary: 'Edit the caller’s profile (partial: absent fields stay, null clears)' },
})

export const userRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/users', detail: { tags: ['Users'] } })
    .use(guard)
    .get('/me', ({ principal }) => getMe(ctx, principal), {
      auth: true,
      response: { 200: UserModel.user, ...problems(401) },
      detail: { summary: 'The caller’s own account, with email and roles' },
    })
    .patch('/me', ({ principal, body }) => updateMe(ctx, principal, body), updateMeRoute())
    .put('/me', ({ principal, body }) => updateMe(ctx, principal, body), updateMeRoute())
    .put(
      '/me/password',
      ({ principal, body, set }) => changePassword(ctx, principal, body).then(() => noContent(set)),
      {
        auth: true,
        body: UserModel.changePassword,
        response: { 204: NoContent, ...problems(400, 401, 415, 422) },
        detail: {
          summary: 'Change the caller’s password',
          description:
            'Every other session of the caller ends; this one stays signed in. A wrong `current_password` answers 422 with the error on `/current_password` (not 401, which would read as a dead token).',
        },
      },
    )
    .get('', ({ principal, query }) => listUsers(ctx, principal, query), {
      auth: true,
      query: UserModel.listQuery,
      response: { 200: UserList, ...problems(401, 403, 422) },
      detail: { summary: 'Public profiles of active users, by username (needs users.read)' },
    })
    .get('/:id', ({ principal, params }) => getUserProfile(ctx, principal, params.id), {
      auth: true,
      params: IdParams,
      response: { 200: UserModel.profile, ...problems(401, 403, 404, 422) },
      detail: { summary: 'An active user’s public profile (needs users.read)' },
    })
