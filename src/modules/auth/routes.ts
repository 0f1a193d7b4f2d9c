import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { clientOf, created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from './guard'
import { AuthModel } from './model'
import {
  endSession,
  listSessions,
  login,
  logout,
  logoutEverywhere,
  refresh,
  register,
} from './service'

export const authRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ prefix: '/auth', detail: { tags: ['Auth'] } })
    .use(guard)
    // Tokens and session lists must not be kept by a browser or a proxy cache (RFC 6749 §5.1).
    .onBeforeHandle(({ set }) => {
      set.headers['cache-control'] = 'no-store'
    })
    .post(
      '/register',
      ({ body, request, server, set }) =>
        register(ctx, body, clientOf(request, server, ctx.config.trustProxy)).then((tokens) =>
          created(set, `/api/v1/users/${tokens.user.id}`, tokens),
        ),
      {
        body: AuthModel.register,
        response: { 201: AuthModel.tokens, ...problems(400, 409, 413, 415, 422) },
        detail: {
          summary: 'Create an account and sign in',
          description:
            'The first account of an empty database becomes `admin`; later ones `developer`.',
        },
      },
    )
    .post(
      '/login',
      ({ body, request, server }) =>
        login(ctx, body, clientOf(request, server, ctx.config.trustProxy)),
      {
        body: AuthModel.login,
        response: { 200: AuthModel.tokens, ...problems(400, 401, 415, 422) },
        detail: {
          summary: 'Sign in with email and password',
          description:
            'Unknown email, wrong password and deactivated account all answer the same 401.',
        },
      },
    )
    .post('/refresh', ({ body }) => refresh(ctx, body.refresh_token), {
      body: AuthModel.refresh,
      response: { 200: AuthModel.tokens, ...problems(400, 401, 415, 422) },
      detail: {
        summary: 'Exchange a refresh token for new tokens',
        description:
          'The presented refresh token stops working. Presenting an already rotated-out token again ends the whole session (reuse detection), so refresh one request at a time.',
      },
    })
    .post('/logout', ({ principal, set }) => logout(ctx, principal).then(() => noContent(set)), {
      auth: true,
      response: { 204: NoContent, ...problems(401) },
      detail: { summary: 'End this session: its refresh and access tokens stop working at once' },
    })
    .post(
      '/logout-all',
      ({ principal, set }) => logoutEverywhere(ctx, principal.userId).then(() => noContent(set)),
      {
        auth: true,
        response: { 204: NoContent, ...problems(401) },
        detail: { summary: 'End every session of the caller' },
      },
    )
    .get('/sessions', ({ principal }) => listSessions(ctx, principal), {
      auth: true,
      response: { 200: t.Array(AuthModel.session), ...problems(401) },
      detail: { summary: 'List the caller’s live sessions, most recently used first' },
    })
    .delete(
      '/sessions/:id',
      ({ principal, params, set }) =>
        endSession(ctx, principal, params.id).then(() => noContent(set)),
      {
        auth: true,
        params: IdParams,
        response: { 204: NoContent, ...problems(401, 404, 422) },
        detail: { summary: 'End one of the caller’s sessions' },
      },
    )
