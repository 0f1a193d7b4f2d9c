import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import { IdParams } from '../../shared/model'
import type { AuthGuard } from '../auth/guard'
import { TokenModel } from './model'
import { createToken, deleteToken, listTokens } from './service'

const PEOPLE_ONLY = 'Signed-in people only: an API token gets 403 here.'

export const tokenRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({ name: 'token-routes', prefix: '/tokens', detail: { tags: ['Tokens'] } })
    .use(guard)
    .get('', ({ principal }) => listTokens(ctx, principal), {
      auth: true,
      response: { 200: t.Array(TokenModel.token), ...problems(401, 403) },
      detail: {
        summary: 'The caller’s live API tokens, newest first',
        description: `Revoked and expired tokens are left out. ${PEOPLE_ONLY}`,
      },
    })
    .post(
      '',
      ({ principal, body, set }) =>
        createToken(ctx, principal, body).then((token) =>
          created(set, `/api/v1/tokens/${token.id}`, token),
        ),
      {
        auth: true,
        body: TokenModel.create,
        response: { 201: TokenModel.created, ...problems(400, 401, 403, 413, 415, 422) },
        detail: {
          summary: 'Create an API token (its secret is in this answer only)',
          description: `Send it as \`Authorization: Bearer tapi_…\`. It can do what its scopes AND its owner’s current rights allow, only in \`project_ids\` when given. ${PEOPLE_ONLY}`,
        },
      },
    )
    .delete(
      '/:id',
      ({ principal, params, set }) =>
        deleteToken(ctx, principal, params.id).then(() => noContent(set)),
      {
        auth: true,
        params: IdParams,
        response: { 204: NoContent, ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'Revoke an API token: it stops working at once, on every instance',
          description: PEOPLE_ONLY,
        },
      },
    )
