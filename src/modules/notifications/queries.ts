import type { Executor } from '../../db'

export type NotificationType =
  | 'task_assigned'
  | 'task_completed'
  | 'comment_added'
  | 'mentioned'
  | 'project_member_added'
  | 'webhook_disabled'

export type NewNotification = {
  user_id: string
  type: NotificationType
  title: string
  message: string
  entity_type: 'task' | 'project' | 'comment' | 'webhook'
  entity_id: string
}

/**
 * Stores notifications inside the transaction of the change that causes them; the caller has
 * already left out the actor (nobody is notified of their own action). Returns the stored rows.
 */
export async function insertNotifications(db: Executor, rows: NewNotification[]) {
  if (rows.length === 0) return []
  return db<(NewNotification & { id: string; is_read: boolean; created_at: string })[]>`
    insert into notifications ${db(rows, 'user_id', 'type', 'title', 'message', 'entity_type', 'entity_id')}
    returning id, user_id, title, message, type, entity_type, entity_id, is_read, created_at
  `
}
