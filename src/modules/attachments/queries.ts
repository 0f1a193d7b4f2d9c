import type { Executor } from '../../db'
import type { Attachment } from './model'

// file_size is a bigint column; uploads are capped far below 2^31, so it maps to a JSON number.
const ATTACHMENT_FIELDS = (db: Executor) => db`
  id, task_id, filename, file_size::int as file_size,
  coalesce(mime_type, 'application/octet-stream') as mime_type, uploaded_by, uploaded_at
`

export async function listAttachments(db: Executor, taskId: string, limit: number, offset: number) {
  return db<Attachment[]>`
    select ${ATTACHMENT_FIELDS(db)}
    from task_attachments
    where task_id = ${taskId}
    order by uploaded_at, id
    limit ${limit}
    offset ${offset}
  `
}

export async function countAttachments(db: Executor, taskId: string) {
  const [row] = await db<{ total: number }[]>`
    select count(*)::int as total
    from task_attachments
    where task_id = ${taskId}
  `
  return row?.total ?? 0
}

export async function insertAttachment(
  db: Executor,
  row: {
    id: string
    task_id: string
    filename: string
    file_path: string
    file_size: number
    mime_type: string
    uploaded_by: string
  },
) {
  const [stored] = await db<Attachment[]>`
    insert into task_attachments ${db(row, 'id', 'task_id', 'filename', 'file_path', 'file_size', 'mime_type', 'uploaded_by')}
    returning ${ATTACHMENT_FIELDS(db)}
  `
  if (!stored) throw new Error('attachment insert returned nothing')
  return stored
}

/** An attachment of the given task, with where its bytes are stored. */
export async function selectAttachment(db: Executor, taskId: string, attachmentId: string) {
  const [row] = await db<(Attachment & { file_path: string })[]>`
    select ${ATTACHMENT_FIELDS(db)}, file_path
    from task_attachments
    where id = ${attachmentId}
      and task_id = ${taskId}
  `
  return row
}

/** Deletes an attachment row of the given task; returns its stored path, or undefined if none. */
export async function deleteAttachment(db: Executor, taskId: string, attachmentId: string) {
  const [row] = await db<{ file_path: string; uploaded_by: string; filename: string }[]>`
    delete from task_attachments
    where id = ${attachmentId}
      and task_id = ${taskId}
    returning file_path, uploaded_by, filename
  `
  return row
}
