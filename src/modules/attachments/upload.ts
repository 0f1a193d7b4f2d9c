import { MULTIPART_FRAMING_BYTES } from '../../config'
import { HttpProblem, invalid, payloadTooLarge, unsupportedMediaType } from '../../problems'

const tooLarge = (limit: number) => payloadTooLarge(`Uploads are limited to ${limit} bytes`)

const isMultipart = (contentType: string | null) =>
  (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'multipart/form-data'

/**
 * The early refusal, from the headers alone: a body that is not multipart, or that announces a
 * length no upload within the limit can have. Runs before the body is read.
 */
export function uploadHeaderProblem(request: Request, limit: number): HttpProblem | undefined {
  if (!isMultipart(request.headers.get('content-type')))
    return unsupportedMediaType('Send the file as multipart/form-data in the field `file`')
  const length = Number(request.headers.get('content-length') ?? 0)
  if (length > limit + MULTIPART_FRAMING_BYTES) return tooLarge(limit)
  return undefined
}

/**
 * Reads the multipart body, counting bytes as they arrive (a chunked body too), and stops at the
 * upload limit plus framing with a 413; then takes the single `file` part. Bun has no streaming
 * multipart parser, so at most that many bytes are held in memory, never more.
 */
export async function readUploadedFile(request: Request, limit: number): Promise<File> {
  const early = uploadHeaderProblem(request, limit)
  if (early) throw early
  if (request.bodyUsed || !request.body)
    throw invalid([{ path: '/file', message: 'is required: send one file part named file' }])
  const cap = limit + MULTIPART_FRAMING_BYTES
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read().catch((error: unknown) => {
      // Bun ends the stream itself past MAX_BODY_BYTES (and has already answered a bare 413).
      if (String(error).includes('maxRequestBodySize')) throw tooLarge(limit)
      throw new HttpProblem(400, 'Bad request', 'The upload ended before its body was complete')
    })
    if (done) break
    size += value.byteLength
    if (size > cap) {
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  const form = await new Response(Buffer.concat(chunks), {
    headers: { 'content-type': request.headers.get('content-type') ?? '' },
  })
    .formData()
    .catch(() => {
      throw new HttpProblem(400, 'Bad request', 'The request body is not well-formed multipart')
    })
  const files = form.getAll('file')
  const file = files[0]
  if (files.length !== 1 || !(file instanceof File))
    throw invalid([
      { path: '/file', message: 'is required: send exactly one file part named file' },
    ])
  if (file.size > limit) throw tooLarge(limit)
  return file
}
