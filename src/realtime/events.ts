import { afterEnd } from '../after-commit'
import type { Executor } from '../db'
import {
  announceEvent,
  announceStoredNotifications,
  insertAnnouncedEvent,
  MAX_NOTIFY_BYTES,
  notify,
} from './queries'

/** The event names of the WebSocket contract (`noun.verb`). */
export const EVENT_NAMES = [
  'task.created',
  'task.updated',
  'task.deleted',
  'task.assigned',
  'task.status_changed',
  'comment.created',
  'member.added',
  'member.removed',
  'project.updated',
] as const
export type EventName = (typeof EVENT_NAMES)[number]

/** What travels on the NOTIFY channel; `d` is left out when it would not fit. */
export type Signal =
  | { k: 'e'; id: number; p: string; e?: string; d?: unknown; at?: string }
  | { k: 'n'; u: string; id: string; d?: Record<string, unknown> }
  | { k: 's'; s: string; o: string }
  | { k: 'u'; u: string; keep: string | null; o: string }
  | { k: 'h'; o: string }
  | { k: 'b'; b: string; o: string }

function fitted(full: Signal, reference: Signal): string {
  const text = JSON.stringify(full)
  return Buffer.byteLength(text) <= MAX_NOTIFY_BYTES ? text : JSON.stringify(reference)
}

/**
 * Stores a project event and announces it: the event exists, its webhook deliveries are queued,
 * and it reaches listeners, if and only if the change commits (insertAnnouncedEvent). Call it last
 * in the transaction: the project's event lock it takes is held until the transaction ends, so
 * that the project's event ids commit and are announced in the order they were handed out.
 *
 * In a transaction of `reservedTransactions` (the server on PostgreSQL), the NOTIFY is sent right
 * after the commit, on the same connection, and the lock released after it: a NOTIFY inside the
 * transaction would make every notifying commit of the database wait for the one before it.
 * A server that dies between the two loses the live push, not the event: sockets get it on their
 * next subscribe with `since`, and webhooks from the outbox.
 */
export async function recordEvent(
  tx: Executor,
  event: { project_id: string; event: EventName; data: Record<string, unknown> },
) {
  const input = {
    project_id: event.project_id,
    event: event.event,
    dataJson: JSON.stringify(event.data),
  }
  const recorded: { id?: number; signal?: string } = {}
  // Registered before the lock can be taken: it is released however the transaction ends.
  const deferred = afterEnd(tx, (connection, committed) =>
    announceEvent(connection, {
      project_id: event.project_id,
      ...(committed ? recorded : {}),
    }),
  )
  const row = await insertAnnouncedEvent(tx, input, deferred ? 'after commit' : 'now')
  recorded.id = row.id
  recorded.signal = row.signal
  return { id: row.id, at: row.at }
}

type StoredNotification = { id: string; user_id: string } & Record<string, unknown>

/**
 * Announces stored notifications to their users' sockets, if and only if the transaction that
 * made them commits: after the commit in a transaction of `reservedTransactions` (see
 * recordEvent), else inside it.
 */
export async function announceNotifications(tx: Executor, rows: readonly StoredNotification[]) {
  const signals = rows.map(({ user_id, ...data }) => {
    const reference: Signal = { k: 'n', u: user_id, id: data.id }
    return { id: data.id, signal: fitted({ ...reference, d: data }, reference) }
  })
  if (signals.length === 0) return rows
  const deferred = afterEnd(tx, (connection, committed) =>
    committed ? announceStoredNotifications(connection, signals) : Promise.resolve(),
  )
  if (!deferred) for (const { signal } of signals) await notify(tx, signal)
  return rows
}

/** Tells the other instances that sessions ended (their caches drop them, their sockets close). */
export function revocationSignal(
  origin: string,
  ended: { sessionId: string } | { userId: string; keepSessionId?: string },
): string {
  const signal: Signal =
    'sessionId' in ended
      ? { k: 's', s: ended.sessionId, o: origin }
      : { k: 'u', u: ended.userId, keep: ended.keepSessionId ?? null, o: origin }
  return JSON.stringify(signal)
}
