import { Elysia } from 'elysia'
import type { AppContext } from '../../../context'
import { created, noContent } from '../../../http'
import { NoContent, problems } from '../../../shared/docs'
import { IdParams } from '../../../shared/model'
import type { AuthGuard } from '../../auth/guard'
import { answerInTransaction } from '../../idempotency/middleware'
import { type Member, MemberList, MemberModel } from './model'
import { addMember, changeMemberRole, listMembers, removeMember } from './service'

// A fresh object per route: Elysia writes resolved hooks into the options it is given.
const changeRoute = (method: string) => ({
  auth: true as const,
  params: MemberModel.params,
  body: MemberModel.change,
  response: { 200: MemberModel.member, ...problems(400, 401, 403, 404, 409, 415, 422) },
  detail: {
    summary: `Change a member’s role (${method})`,
    description:
      'Owner, manager or admin; nobody but the owner or an admin touches the owner. `role: owner` hands ownership over (owner or admin only): the previous owner becomes a manager. The owner’s role cannot be lowered directly (409).',
  },
})

export const memberRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({
    name: 'member-routes',
    prefix: '/projects/:id/members',
    detail: { tags: ['Projects'] },
  })
    .use(guard)
    .get('', ({ principal, params, query }) => listMembers(ctx, principal, params.id, query), {
      auth: true,
      params: IdParams,
      query: MemberModel.listQuery,
      response: { 200: MemberList, ...problems(401, 403, 404, 422) },
      detail: { summary: 'A project’s members, in joining order (members only)' },
    })
    .post(
      '',
      async ({ principal, params, body, set, request }) => {
        const respond = (m: Member) =>
          created(set, `/api/v1/projects/${params.id}/members/${m.user_id}`, m)
        return respond(
          await addMember(
            ctx,
            principal,
            params.id,
            body,
            answerInTransaction(request, set, respond),
          ),
        )
      },
      {
        auth: true,
        params: IdParams,
        body: MemberModel.add,
        response: { 201: MemberModel.member, ...problems(400, 401, 403, 404, 409, 415, 422) },
        detail: {
          summary: 'Add an active user to the project (default role member)',
          description:
            'Owner, manager or admin. 409 when the user already is a member; 422 for an unknown or deactivated user, or `role: owner`. The added user is notified.',
        },
      },
    )
    .patch(
      '/:user_id',
      ({ principal, params, body }) =>
        changeMemberRole(ctx, principal, params.id, params.user_id, body.role),
      changeRoute('PATCH'),
    )
    .put(
      '/:user_id',
      ({ principal, params, body }) =>
        changeMemberRole(ctx, principal, params.id, params.user_id, body.role),
      changeRoute('PUT'),
    )
    .delete(
      '/:user_id',
      ({ principal, params, set }) =>
        removeMember(ctx, principal, params.id, params.user_id).then(() => noContent(set)),
      {
        auth: true,
        params: MemberModel.params,
        response: { 204: NoContent, ...problems(401, 403, 404, 409, 422) },
        detail: {
          summary: 'Remove a member, or leave the project',
          description:
            'Anyone may remove themselves; owners, managers and admins remove others. The owner cannot be removed or leave (409): hand ownership over first. The member’s task assignments in the project are cleared.',
        },
      },
    )
