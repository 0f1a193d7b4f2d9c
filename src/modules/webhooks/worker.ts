import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { describeError } from '../../logger'
import { announceNotifications } from '../../realtime/events'
import { insertNotifications } from '../notifications/queries'
import { type Destination, pinnedRequest, resolveDestination } from './destination'
import {
  type AttemptOutcome,
  claimDueDeliveries,
  type DueDelivery,
  deactivateWebhook,
  recordAttempt,
} from './queries'
import { sign } from './service'

// A claimed delivery is free again after this, should its worker die mid-attempt.
const LEASE_SECONDS = 60
const BATCH = 10
// Retry delays as multiples of WEBHOOK_RETRY_BASE_MS (default 10 s): 10 s, 1 min, 5 min, 30 min,
// 2 h, then every 6 h, each with up to ±20 % jitter, for up to 24 hours from the first attempt.
const GROWTH = [1, 6, 30, 180, 720, 2160]
const GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000
const DEACTIVATE_AFTER = 20
const EXCERPT_CHARS = 500

export function retryDelayMs(baseMs: number, attempts: number) {
  const factor = GROWTH[Math.min(attempts - 1, GROWTH.length - 1)] as number
  return Math.round(baseMs * factor * (0.8 + Math.random() * 0.4))
}

// Deliveries in flight at once per process: a receiver that hangs holds one of these until its
// WEBHOOK_TIMEOUT_MS, never the worker, so other receivers' deliveries go on meanwhile.
const CONCURRENCY = 32

/**
 * Polls for due deliveries and sends them; one per process. Returns the function that stops it,
 * which resolves once the attempts under way have ended and been recorded.
 */
export function startDeliveryWorker(ctx: AppContext) {
  let claiming = false
  let stopped = false
  let inFlight = 0
  // The last claim took all it asked for: more may be due, so a freed slot claims again at once.
  let backlog = false
  let idle: (() => void) | undefined
  const settle = () => {
    if (stopped && !claiming && inFlight === 0) idle?.()
  }
  const failed = (error: unknown) => {
    // A poll cut short by the shutdown closing the pool is not a failure.
    if (!stopped) ctx.log.warn('webhook worker failed', describeError(error))
  }
  const tick = async () => {
    if (claiming || stopped) return
    claiming = true
    try {
      while (!stopped && inFlight < CONCURRENCY) {
        const want = Math.min(BATCH, CONCURRENCY - inFlight)
        const due = await claimDueDeliveries(ctx.sql, want, LEASE_SECONDS)
        backlog = due.length === want
        // Claimed rows are sent even when the worker is stopping: the stop waits for them.
        for (const delivery of due) {
          inFlight += 1
          deliver(ctx, delivery)
            .catch(failed)
            .finally(() => {
              inFlight -= 1
              settle()
              if (backlog) void tick()
            })
        }
        if (!backlog) break
      }
    } catch (error) {
      failed(error)
    } finally {
      claiming = false
      settle()
    }
  }
  const timer = setInterval(tick, ctx.config.webhooks.pollMs)
  timer.unref()
  void tick()
  return () => {
    stopped = true
    clearInterval(timer)
    return new Promise<void>((resolve) => {
      idle = resolve
      settle()
    })
  }
}

async function deliver(ctx: AppContext, delivery: DueDelivery) {
  const outcome = await attempt(ctx, delivery)
  const age = Date.now() - Date.parse(delivery.created_at)
  const next = outcome.ok
    ? { status: 'succeeded' as const, delayMs: 0 }
    : age >= GIVE_UP_AFTER_MS
      ? { status: 'failed' as const, delayMs: 0 }
      : {
          status: 'retrying' as const,
          delayMs: retryDelayMs(ctx.config.webhooks.retryBaseMs, delivery.attempts),
        }
  // One transaction: a reader never sees the attempt without the delivery's new state.
  const hook = await ctx.sql.begin((tx) => recordAttempt(tx, delivery, outcome, next))
  if (hook?.active && hook.failures_in_a_row >= DEACTIVATE_AFTER) {
    // Deactivated and its project's owner told, in one transaction.
    const stopped = await ctx.sql.begin(async (tx) => {
      const row = await deactivateWebhook(tx, delivery.webhook_id)
      if (row)
        await announceNotifications(
          tx,
          await insertNotifications(tx, [
            {
              user_id: row.owner_id,
              type: 'webhook_disabled',
              title: 'A webhook was deactivated',
              message: `${DEACTIVATE_AFTER} deliveries in a row to ${row.url.slice(0, 200)} failed; it is now inactive.`,
              entity_type: 'webhook',
              entity_id: row.id,
            },
          ]),
        )
      return row
    })
    if (stopped)
      ctx.log.warn('webhook deactivated after failures in a row', {
        webhook_id: delivery.webhook_id,
      })
  }
}

/**
 * One POST: WEBHOOK_TIMEOUT_MS (10 s) at most, redirects not followed, only a short excerpt of the
 * answer kept, sent to the address the destination check approved (DNS is not asked again).
 */
async function attempt(ctx: AppContext, delivery: DueDelivery): Promise<AttemptOutcome> {
  const started = performance.now()
  const elapsed = () => Math.round(performance.now() - started)
  const failed = (error: string, status: number | null = null): AttemptOutcome => ({
    ok: false,
    response_status: status,
    duration_ms: elapsed(),
    error: error.slice(0, 300),
    excerpt: null,
  })
  // The host is resolved again now: DNS may have changed since the webhook was saved. The
  // connection then goes to the address checked here, not to a second lookup's answer.
  const target = await resolveDestination(delivery.url, ctx.config.webhooks.allowPrivate)
  if ('problem' in target) return failed(`destination refused: ${target.problem}`)
  const timeoutMs = ctx.config.webhooks.timeoutMs
  const signal = AbortSignal.timeout(timeoutMs)
  const timestamp = Math.floor(Date.now() / 1000)
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'taskapi-webhooks',
    'webhook-id': delivery.message_id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(delivery.secret, delivery.message_id, timestamp, delivery.payload),
  }
  try {
    const response = await postToFirstReachable(target, {
      method: 'POST',
      redirect: 'manual',
      signal,
      headers,
      body: delivery.payload,
    })
    const excerpt = await readExcerpt(response)
    const ok = response.status >= 200 && response.status < 300
    return {
      ok,
      response_status: response.status,
      duration_ms: elapsed(),
      error: ok ? null : `HTTP ${response.status}`,
      excerpt,
    }
  } catch (error) {
    const name = (error as Error).name
    return failed(
      name === 'TimeoutError'
        ? `timed out after ${timeoutMs} ms`
        : String((error as Error).message),
    )
  }
}

// Errors that mean "nothing listens at this address": the next checked address is tried.
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ConnectionRefused'])

/**
 * Posts to the checked addresses in turn (as a client falls back from IPv6 to IPv4), each
 * pinned: the URL's host replaced by the address, the Host header and TLS name kept.
 */
async function postToFirstReachable(
  target: Destination,
  init: RequestInit & { headers: Record<string, string> },
): Promise<Response> {
  for (let i = 0; ; i += 1) {
    const pinned = pinnedRequest(target.url, target.addresses[i] as string)
    try {
      return await fetch(pinned.url, {
        ...init,
        headers: { ...init.headers, host: pinned.host },
        ...(pinned.tls ? { tls: pinned.tls } : {}),
      })
    } catch (error) {
      const code = (error as { code?: string }).code ?? ''
      if (i + 1 >= target.addresses.length || !UNREACHABLE.has(code)) throw error
    }
  }
}

/** The first characters of the answer; the rest is not read. */
async function readExcerpt(response: Response): Promise<string | null> {
  const reader = response.body?.getReader()
  if (!reader) return null
  try {
    const { value } = await reader.read()
    return value ? new TextDecoder().decode(value).slice(0, EXCERPT_CHARS) : null
  } catch {
    return null
  } finally {
    await reader.cancel().catch(() => {})
  }
}

/**
 * The worker as a plugin: it runs while the server listens. `webhookWorker.stop()` (the
 * process's shutdown) resolves once the attempts under way are recorded.
 */
export function deliveryWorker(ctx: AppContext) {
  let stop: (() => Promise<void>) | undefined
  const control = { stop: () => stop?.() ?? Promise.resolve() }
  return new Elysia({ name: 'webhook-delivery-worker' })
    .decorate('webhookWorker', control)
    .onStart(() => {
      stop = startDeliveryWorker(ctx)
    })
    .onStop(() => control.stop())
}
