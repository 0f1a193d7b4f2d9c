import { t } from 'elysia'
import { PageQuery, Pagination, Timestamp, Uuid } from '../../shared/model'

export const AttachmentModel = {
  attachment: t.Object(
    {
      id: Uuid,
      task_id: Uuid,
      filename: t.String({
        description: 'The client’s filename, sanitised: no path parts, no control characters',
      }),
      file_size: t.Integer({ minimum: 0, description: 'Bytes' }),
      mime_type: t.String({
        description: 'As declared by the uploader, or application/octet-stream',
      }),
      uploaded_by: Uuid,
      uploaded_at: Timestamp,
    },
    { title: 'Attachment' },
  ),
  params: t.Object({ id: Uuid, attachment_id: Uuid }),
  listQuery: t.Object({ ...PageQuery }),
  bytes: t.String({ format: 'binary', description: 'The stored bytes' }),
}

export const AttachmentList = t.Object(
  { data: t.Array(AttachmentModel.attachment), pagination: Pagination },
  { title: 'AttachmentList' },
)

export type Attachment = typeof AttachmentModel.attachment.static
export type AttachmentListQuery = typeof AttachmentModel.listQuery.static
