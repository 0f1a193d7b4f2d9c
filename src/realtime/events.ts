import type { Executor } from '../db'
import { insertAnnouncedEvent, MAX_NOTIFY_BYTES, notify } from './queries'

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
 * Stores a project event and announces it, inside the caller's transaction: the event exists,
 * its webhook deliveries are queued, and it reaches listeners, if and only if the change commits
 * (one statement: insertAnnouncedEvent). Call it last in the transaction: the project's event lock
 * it takes is held until the commit, so that the project's event ids commit in the order they
 * were handed out.
 */
export function recordEvent(
  tx: Executor,
  event: { project_id: string; event: EventName; data: Record<string, unknown> },
) {
  return insertAnnouncedEvent(tx, {
    project_id: event.project_id,
    event: event.event,
    dataJson: JSON.stringify(event.data),
  })
}

type StoredNotification = { id: string; user_id: string } & Record<string, unknown>

/** Announces stored notifications to their users' sockets, inside the transaction that made them. */
export async function announceNotifications(tx: Executor, rows: readonly StoredNotification[]) {
  for (const { user_id, ...data } of rows) {
    const reference: Signal = { k: 'n', u: user_id, id: data.id }
    await notify(tx, fitted({ ...reference, d: data }, reference))
  }
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
