import { createHmac, randomBytes } from 'node:crypto'
import type { AppContext, Principal } from '../../context'
import type { Executor } from '../../db'
import { invalid, notFound } from '../../problems'
import { EVENT_NAMES } from '../../realtime/events'
import { authorizeProject } from '../authz/service'
import { destinationProblem } from './destination'
import type { WebhookCreate, WebhookUpdate } from './model'
import {
  deleteWebhook,
  insertDelivery,
  insertEventDeliveries,
  insertWebhook,
  listDeliveries,
  listWebhooks,
  replaceSecret,
  selectDelivery,
  selectWebhook,
  updateWebhook,
} from './queries'

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`

/** Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`. */
export function sign(secret: string, messageId: string, timestamp: number, body: string) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const mac = createHmac('sha256', key).update(`${messageId}.${timestamp}.${body}`).digest('base64')
  return `v1,${mac}`
}

/** The outbox rows of a recorded event; called by recordEvent inside the change's transaction. */
export function queueEventDeliveries(
  tx: Executor,
  event: { id: number; project_id: string; event: string; data: unknown; at: string },
) {
  const payload = JSON.stringify({
    id: String(event.id),
    event: event.event,
    project_id: event.project_id,
    data: event.data,
    at: event.at,
  })
  return insertEventDeliveries(tx, { ...event, payload })
}

async function checkInput(ctx: AppContext, input: { url?: string; events?: string[] }) {
  const errors = []
  if (input.url !== undefined) {
    const problem = await destinationProblem(input.url, ctx.config.webhooks.allowPrivate)
    if (problem) errors.push({ path: '/url', message: problem })
  }
  const known: readonly string[] = EVENT_NAMES
  for (const [i, name] of (input.events ?? []).entries())
    if (name !== '*' && !known.includes(name))
      errors.push({
        path: `/events/${i}`,
        message: `must be * or one of: ${EVENT_NAMES.join(', ')}`,
      })
  if (errors.length > 0) throw invalid(errors)
}

// Owners, managers and admins manage a project's webhooks.
const manage = (ctx: AppContext, principal: Principal, projectId: string) =>
  authorizeProject(ctx.sql, principal, projectId, 'project.update')

async function existing(ctx: AppContext, projectId: string, webhookId: string) {
  const hook = await selectWebhook(ctx.sql, projectId, webhookId)
  if (!hook) throw notFound('No such webhook')
  return hook
}

export async function createWebhook(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  input: WebhookCreate,
) {
  await manage(ctx, principal, projectId)
  await checkInput(ctx, input)
  const secret = newSecret()
  const hook = await insertWebhook(ctx.sql, {
    project_id: projectId,
    url: input.url,
    events: input.events,
    description: input.description ?? null,
    active: input.active ?? true,
    secret,
    created_by: principal.userId,
  })
  return { ...hook, secret }
}

export async function listProjectWebhooks(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
) {
  await manage(ctx, principal, projectId)
  return [...(await listWebhooks(ctx.sql, projectId))]
}

export async function getWebhook(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
) {
  await manage(ctx, principal, projectId)
  return existing(ctx, projectId, webhookId)
}

export async function changeWebhook(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
  input: WebhookUpdate,
) {
  await manage(ctx, principal, projectId)
  await existing(ctx, projectId, webhookId)
  await checkInput(ctx, input)
  const hook = await updateWebhook(ctx.sql, projectId, webhookId, input)
  if (!hook) throw notFound('No such webhook')
  return hook
}

export async function removeWebhook(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
) {
  await manage(ctx, principal, projectId)
  if (!(await deleteWebhook(ctx.sql, projectId, webhookId))) throw notFound('No such webhook')
}

export async function rotateSecret(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
) {
  await manage(ctx, principal, projectId)
  const secret = newSecret()
  if (!(await replaceSecret(ctx.sql, projectId, webhookId, secret)))
    throw notFound('No such webhook')
  return { secret }
}

export async function pingWebhook(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
) {
  await manage(ctx, principal, projectId)
  await existing(ctx, projectId, webhookId)
  const messageId = `ping_${crypto.randomUUID()}`
  const payload = JSON.stringify({
    id: messageId,
    event: 'ping',
    project_id: projectId,
    data: { webhook_id: webhookId },
    at: new Date().toISOString(),
  })
  const id = await insertDelivery(ctx.sql, {
    webhook_id: webhookId,
    event_id: null,
    message_id: messageId,
    event: 'ping',
    payload,
  })
  return { delivery_id: id }
}

export async function webhookDeliveries(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
  limit: number,
) {
  await manage(ctx, principal, projectId)
  await existing(ctx, projectId, webhookId)
  return [...(await listDeliveries(ctx.sql, webhookId, limit))]
}

/** Sends a delivery's payload again, as a new delivery with the same `webhook-id`. */
export async function redeliver(
  ctx: AppContext,
  principal: Principal,
  projectId: string,
  webhookId: string,
  deliveryId: string,
) {
  await manage(ctx, principal, projectId)
  await existing(ctx, projectId, webhookId)
  const original = await selectDelivery(ctx.sql, webhookId, deliveryId)
  if (!original) throw notFound('No such delivery')
  const id = await insertDelivery(ctx.sql, {
    webhook_id: webhookId,
    event_id: original.event_id === null ? null : Number(original.event_id),
    message_id: original.message_id,
    event: original.event,
    payload: original.payload,
  })
  return { delivery_id: id }
}
