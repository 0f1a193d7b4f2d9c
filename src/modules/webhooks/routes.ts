import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { created, noContent } from '../../http'
import { NoContent, problems } from '../../shared/docs'
import type { AuthGuard } from '../auth/guard'
import { WebhookModel } from './model'
import {
  changeWebhook,
  createWebhook,
  getWebhook,
  listProjectWebhooks,
  pingWebhook,
  redeliver,
  removeWebhook,
  rotateSecret,
  webhookDeliveries,
} from './service'

const ProjectParams = t.Object({ id: t.String({ format: 'uuid' }) })
const HookParams = t.Object({
  id: t.String({ format: 'uuid' }),
  webhook_id: t.String({ format: 'uuid' }),
})
const DeliveryParams = t.Object({
  id: t.String({ format: 'uuid' }),
  webhook_id: t.String({ format: 'uuid' }),
  delivery_id: t.String({ format: 'uuid' }),
})

const WHO = 'Project owner, manager or admin.'

const updateRoute = (method: string) => ({
  auth: true as const,
  params: HookParams,
  body: WebhookModel.update,
  response: { 200: WebhookModel.webhook, ...problems(400, 401, 403, 404, 415, 422) },
  detail: {
    summary: `Change a webhook (${method}; absent fields stay)`,
    description: `${WHO} A new \`url\` is checked as on creation. Setting \`active\` to true resets the failure count.`,
  },
})

export const webhookRoutes = (ctx: AppContext, guard: AuthGuard) =>
  new Elysia({
    name: 'webhook-routes',
    prefix: '/projects/:id/webhooks',
    detail: { tags: ['Webhooks'] },
  })
    .use(guard)
    .get('', ({ principal, params }) => listProjectWebhooks(ctx, principal, params.id), {
      auth: true,
      params: ProjectParams,
      response: { 200: t.Array(WebhookModel.webhook), ...problems(401, 403, 404, 422) },
      detail: { summary: 'A project’s webhooks', description: WHO },
    })
    .post(
      '',
      ({ principal, params, body, set }) =>
        createWebhook(ctx, principal, params.id, body).then((hook) =>
          created(set, `/api/v1/projects/${params.id}/webhooks/${hook.id}`, hook),
        ),
      {
        auth: true,
        params: ProjectParams,
        body: WebhookModel.create,
        response: { 201: WebhookModel.created, ...problems(400, 401, 403, 404, 415, 422) },
        detail: {
          summary: 'Create a webhook (its secret is in this answer only)',
          description: `${WHO} Each matching event is POSTed as \`{id, event, project_id, data, at}\` with the Standard Webhooks headers \`webhook-id\`, \`webhook-timestamp\` and \`webhook-signature\`. A URL whose host resolves to a non-public address is a 422 unless WEBHOOK_ALLOW_PRIVATE=true. No Idempotency-Key (400).`,
        },
      },
    )
    .get(
      '/:webhook_id',
      ({ principal, params }) => getWebhook(ctx, principal, params.id, params.webhook_id),
      {
        auth: true,
        params: HookParams,
        response: { 200: WebhookModel.webhook, ...problems(401, 403, 404, 422) },
        detail: { summary: 'One webhook (without its secret)', description: WHO },
      },
    )
    .patch(
      '/:webhook_id',
      ({ principal, params, body }) =>
        changeWebhook(ctx, principal, params.id, params.webhook_id, body),
      updateRoute('PATCH'),
    )
    .put(
      '/:webhook_id',
      ({ principal, params, body }) =>
        changeWebhook(ctx, principal, params.id, params.webhook_id, body),
      updateRoute('PUT'),
    )
    .delete(
      '/:webhook_id',
      ({ principal, params, set }) =>
        removeWebhook(ctx, principal, params.id, params.webhook_id).then(() => noContent(set)),
      {
        auth: true,
        params: HookParams,
        response: { 204: NoContent, ...problems(401, 403, 404, 422) },
        detail: { summary: 'Delete a webhook and its delivery log', description: WHO },
      },
    )
    .post(
      '/:webhook_id/rotate-secret',
      ({ principal, params }) => rotateSecret(ctx, principal, params.id, params.webhook_id),
      {
        auth: true,
        params: HookParams,
        response: { 200: WebhookModel.secret, ...problems(400, 401, 403, 404, 422) },
        detail: {
          summary: 'Replace the webhook’s secret (the new one is in this answer only)',
          description: `${WHO} Deliveries sent from now on are signed with the new secret. No Idempotency-Key (400).`,
        },
      },
    )
    .post(
      '/:webhook_id/ping',
      ({ principal, params, set }) =>
        pingWebhook(ctx, principal, params.id, params.webhook_id).then((accepted) => {
          set.status = 202
          return accepted
        }),
      {
        auth: true,
        params: HookParams,
        response: { 202: WebhookModel.accepted, ...problems(400, 401, 403, 404, 422) },
        detail: { summary: 'Send a `ping` event to the webhook', description: WHO },
      },
    )
    .get(
      '/:webhook_id/deliveries',
      ({ principal, params, query }) =>
        webhookDeliveries(ctx, principal, params.id, params.webhook_id, query.limit ?? 50),
      {
        auth: true,
        params: HookParams,
        query: WebhookModel.deliveriesQuery,
        response: { 200: t.Array(WebhookModel.delivery), ...problems(401, 403, 404, 422) },
        detail: {
          summary: 'The webhook’s delivery log, newest first',
          description: `${WHO} Each delivery with its attempts (status code, duration, a short error); response bodies are not kept.`,
        },
      },
    )
    .post(
      '/:webhook_id/deliveries/:delivery_id/redeliver',
      ({ principal, params, set }) =>
        redeliver(ctx, principal, params.id, params.webhook_id, params.delivery_id).then(
          (accepted) => {
            set.status = 202
            return accepted
          },
        ),
      {
        auth: true,
        params: DeliveryParams,
        response: { 202: WebhookModel.accepted, ...problems(400, 401, 403, 404, 422) },
        detail: {
          summary: 'Send a delivery’s payload again (same `webhook-id`)',
          description: WHO,
        },
      },
    )
