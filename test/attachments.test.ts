import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../src/config'
import { contentDisposition, sanitizeFilename } from '../src/modules/attachments/names'
import { removeProjectFiles, removeTaskFiles } from '../src/modules/attachments/storage'
import { createProject, createTask } from './factories'
import { expectProblemShape, startServer, type TestResponse, type TestServer } from './helpers'
import { createTeam, type Person, type Team } from './team'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

const LIMIT = 65_536

let server: TestServer
let team: Team
let uploadDir: string
beforeAll(async () => {
  uploadDir = await mkdtemp(join(tmpdir(), 'taskapi-uploads-'))
  server = await startServer({
    UPLOAD_DIR: uploadDir,
    MAX_UPLOAD_BYTES: String(LIMIT),
    MAX_BODY_BYTES: String(1_048_576),
  })
  team = await createTeam(server)
}, 60_000)
afterAll(async () => {
  await server.close()
  await rm(uploadDir, { recursive: true, force: true })
}, 60_000)

const attachmentsOf = (taskId: string) => `/api/v1/tasks/${taskId}/attachments`
const newTask = () => createTask(server, team.project.id, team.owner)

async function answer(res: Response): Promise<TestResponse> {
  const text = await res.text()
  let body: unknown
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {}
  return { status: res.status, headers: res.headers, body, text }
}

function upload(
  taskId: string,
  who: Person | undefined,
  bytes: Uint8Array | string,
  filename = 'notes.txt',
  type = 'text/plain',
) {
  const form = new FormData()
  form.append('file', new Blob([bytes], { type }), filename)
  return fetch(`${server.url}${attachmentsOf(taskId)}`, {
    method: 'POST',
    headers: who ? { authorization: `Bearer ${who.access}` } : {},
    body: form,
  }).then(answer)
}

/** A multipart body written by hand, so a filename reaches the server exactly as given. */
function rawMultipart(filename: string, bytes: Uint8Array, type = 'application/octet-stream') {
  const head = `--XyZ\r\ncontent-disposition: form-data; name="file"; filename="${filename}"\r\ncontent-type: ${type}\r\n\r\n`
  const body = Buffer.concat([Buffer.from(head, 'utf8'), bytes, Buffer.from('\r\n--XyZ--\r\n')])
  return { body, contentType: 'multipart/form-data; boundary=XyZ' }
}

function postRaw(
  taskId: string,
  who: Person,
  body: Uint8Array | ReadableStream | string,
  contentType: string,
) {
  return fetch(`${server.url}${attachmentsOf(taskId)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who.access}`, 'content-type': contentType },
    body,
  }).then(answer)
}

async function uploaded(taskId: string, who: Person, content = 'hello', filename = 'a.txt') {
  const res = await upload(taskId, who, content, filename)
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.text}`)
  return res.body as { id: string; filename: string }
}

/** Every file under UPLOAD_DIR, relative to it. */
async function storedFiles(): Promise<string[]> {
  const entries = await readdir(uploadDir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(uploadDir.length + 1))
    .sort()
}

const download = (taskId: string, id: string, who: Person | undefined) =>
  fetch(`${server.url}${attachmentsOf(taskId)}/${id}`, {
    headers: who ? { authorization: `Bearer ${who.access}` } : {},
  })

describe('POST /tasks/:id/attachments', () => {
  it('stores the bytes under a generated name and answers 201 with the attachment', async () => {
    const task = await newTask()
    const bytes = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) % 256)
    const res = await upload(task.id, team.member, bytes, 'Résumé 📄.pdf', 'application/pdf')
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      task_id: task.id,
      filename: 'Résumé 📄.pdf',
      file_size: 1024,
      mime_type: 'application/pdf',
      uploaded_by: team.member.id,
    })
    expect(res.headers.get('location')).toBe(`${attachmentsOf(task.id)}/${res.body.id}`)
    const path = `${team.project.id}/${task.id}/${res.body.id}`
    expect(await storedFiles()).toContain(path)
    expect((await stat(join(uploadDir, path))).mode & 0o777).toBe(0o600)
    expect((await stat(join(uploadDir, team.project.id, task.id))).mode & 0o777).toBe(0o700)
    const [row] = await server.db
      .sql`select file_path from task_attachments where id = ${res.body.id}`
    expect(row?.file_path).toBe(path)
    const [entry] = await server.db.sql`
      select action, project_id, details from activity_log where entity_id = ${res.body.id}
    `
    expect(entry).toMatchObject({
      action: 'attachment.created',
      project_id: team.project.id,
      details: { filename: 'Résumé 📄.pdf', file_size: 1024 },
    })
  })

  it('accepts a file of exactly MAX_UPLOAD_BYTES and an empty file', async () => {
    const task = await newTask()
    expect((await upload(task.id, team.member, new Uint8Array(LIMIT))).body.file_size).toBe(LIMIT)
    expect((await upload(task.id, team.member, new Uint8Array(0))).body.file_size).toBe(0)
  })

  it('answers 413 problem+json for a file one byte over the limit and keeps no file', async () => {
    const task = await newTask()
    const before = await storedFiles()
    const res = await upload(task.id, team.member, new Uint8Array(LIMIT + 1))
    expectProblemShape(res, 413)
    expect(await storedFiles()).toEqual(before)
    const list = await server.request('GET', attachmentsOf(task.id), { token: team.member.access })
    expect(list.body.data).toEqual([])
  })

  it('answers 413 from Content-Length alone for a much larger body', async () => {
    const task = await newTask()
    const before = await storedFiles()
    expectProblemShape(await upload(task.id, team.member, new Uint8Array(500_000)), 413)
    expect(await storedFiles()).toEqual(before)
  })

  it('answers 413 for a chunked body (no Content-Length) that grows over the limit', async () => {
    const task = await newTask()
    const before = await storedFiles()
    const { body } = rawMultipart('big.bin', new Uint8Array(300_000))
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < body.length; i += 16_384)
          controller.enqueue(body.subarray(i, i + 16_384))
        controller.close()
      },
    })
    const res = await postRaw(task.id, team.member, stream, 'multipart/form-data; boundary=XyZ')
    expectProblemShape(res, 413)
    expect(await storedFiles()).toEqual(before)
  })

  it('answers 413 for a chunked body past MAX_BODY_BYTES, where Bun ends the stream itself', async () => {
    const task = await newTask()
    const before = await storedFiles()
    const { body } = rawMultipart('huge.bin', new Uint8Array(2_000_000))
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < body.length; i += 65_536)
          controller.enqueue(body.subarray(i, i + 65_536))
        controller.close()
      },
    })
    const res = await postRaw(task.id, team.member, stream, 'multipart/form-data; boundary=XyZ')
    expect(res.status).toBe(413)
    expect(await storedFiles()).toEqual(before)
  })

  it('keeps only the last path part of a filename and strips control characters', async () => {
    const task = await newTask()
    const cases: [string, string][] = [
      ['../../etc/passwd', 'passwd'],
      ['..\\..\\windows\\evil.exe', 'evil.exe'],
      ['bell\u0007\u001b[31mred\u007f.txt', 'bell[31mred.txt'],
      ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
      ['..', 'file'],
    ]
    for (const [raw, shown] of cases) {
      const { body, contentType } = rawMultipart(raw, Buffer.from('x'))
      const res = await postRaw(task.id, team.member, body, contentType)
      expect(res.status).toBe(201)
      expect(res.body.filename).toBe(shown)
      const [row] = await server.db
        .sql`select file_path from task_attachments where id = ${res.body.id}`
      expect(row?.file_path).toBe(`${team.project.id}/${task.id}/${res.body.id}`)
    }
    expect((await storedFiles()).some((f) => f.includes('passwd') || f.includes('..'))).toBe(false)
  })

  it('names a file part with an empty filename "file" (it was a 500), and stores it', async () => {
    const task = await newTask()
    const { body, contentType } = rawMultipart('', Buffer.from('no name'))
    const res = await postRaw(task.id, team.member, body, contentType)
    expect(res.status).toBe(201)
    expect(res.body.filename).toBe('file')
    const got = await download(task.id, res.body.id, team.member)
    expect(await got.text()).toBe('no name')
  })

  it('caps a long filename at 255 characters, keeping its extension', async () => {
    const task = await newTask()
    const res = await upload(task.id, team.member, 'x', `${'é'.repeat(300)}.tar.gz`)
    expect(res.status).toBe(201)
    expect(Array.from(res.body.filename as string)).toHaveLength(255)
    expect(res.body.filename).toEndWith('é.gz')
  })

  // Bun 1.4.4's multipart parser ignores a part's Content-Type and types a file by its extension.
  it('stores application/octet-stream when the type is unknown', async () => {
    const task = await newTask()
    const { body, contentType } = rawMultipart('x.weird', Buffer.from('x'), 'image/png')
    const res = await postRaw(task.id, team.member, body, contentType)
    expect(res.body.mime_type).toBe('application/octet-stream')
  })

  it('answers 422 without a file part, 415 for JSON, 400 for broken multipart', async () => {
    const task = await newTask()
    const form = new FormData()
    form.append('file', 'just text, not a file')
    const textPart = await fetch(`${server.url}${attachmentsOf(task.id)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${team.member.access}` },
      body: form,
    }).then(answer)
    expectProblemShape(textPart, 422)
    expect(textPart.body.errors[0].path).toBe('/file')
    const json = await server.request('POST', attachmentsOf(task.id), {
      token: team.member.access,
      body: { file: 'x' },
    })
    expectProblemShape(json, 415)
    const broken = await postRaw(
      task.id,
      team.member,
      'no boundary here',
      'multipart/form-data; boundary=XyZ',
    )
    expect([400, 422]).toContain(broken.status)
    expectProblemShape(broken, broken.status)
  })

  it('leaves no file behind when the insert fails', async () => {
    const task = await newTask()
    const sql = server.db.sql
    await sql`
      create function refuse_attachment() returns trigger language plpgsql as $$
      begin
        if new.filename = 'refused.txt' then
          raise exception 'refused by test';
        end if;
        return new;
      end
      $$
    `
    await sql`
      create trigger refuse_attachment before insert on task_attachments
      for each row execute function refuse_attachment()
    `
    try {
      const before = await storedFiles()
      const res = await upload(task.id, team.member, 'doomed', 'refused.txt')
      expectProblemShape(res, 500)
      expect(res.text).not.toContain('refused by test')
      expect(await storedFiles()).toEqual(before)
    } finally {
      await sql`drop trigger refuse_attachment on task_attachments`
      await sql`drop function refuse_attachment()`
    }
  })

  it('answers 401 anonymous, 404 for an unknown task, 403 to a viewer and an outsider', async () => {
    const task = await newTask()
    const before = await storedFiles()
    expectProblemShape(await upload(task.id, undefined, 'x'), 401)
    expectProblemShape(await upload(crypto.randomUUID(), team.member, 'x'), 404)
    expectProblemShape(await upload(task.id, team.viewer, 'x'), 403)
    expectProblemShape(await upload(task.id, team.outsider, 'x'), 403)
    expect(await storedFiles()).toEqual(before)
  })

  it('answers an oversized upload from an outsider with 403, from nobody with 401', async () => {
    const task = await newTask()
    expectProblemShape(await upload(task.id, team.outsider, new Uint8Array(LIMIT + 1)), 403)
    expectProblemShape(await upload(task.id, undefined, new Uint8Array(500_000)), 401)
  })

  it('removes a task’s or a project’s files through the storage helpers', async () => {
    const task = await newTask()
    const other = await newTask()
    const a = await uploaded(task.id, team.member)
    const b = await uploaded(other.id, team.member)
    await removeTaskFiles(server.config, team.project.id, task.id)
    const files = await storedFiles()
    expect(files).not.toContain(`${team.project.id}/${task.id}/${a.id}`)
    expect(files).toContain(`${team.project.id}/${other.id}/${b.id}`)
    const project = await createProject(server, team.owner)
    const elsewhere = await createTask(server, project.id, team.owner)
    const c = await uploaded(elsewhere.id, team.owner)
    await removeProjectFiles(server.config, project.id)
    expect(await storedFiles()).not.toContain(`${project.id}/${elsewhere.id}/${c.id}`)
    expect(await storedFiles()).toContain(`${team.project.id}/${other.id}/${b.id}`)
  })
})

describe('GET /tasks/:id/attachments/:attachment_id', () => {
  it('returns the exact bytes with the stored type, a safe disposition and nosniff', async () => {
    const task = await newTask()
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31 + 7) % 256)
    const { body, contentType } = rawMultipart('Überblick Q4 (final).png', bytes, 'image/png')
    const created = await postRaw(task.id, team.member, body, contentType)
    expect(created.body.filename).toBe('Überblick Q4 (final).png')
    const res = await download(task.id, created.body.id, team.viewer)
    expect(res.status).toBe(200)
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes)
    expect(res.headers.get('content-type')).toBe('image/png')
    expect(res.headers.get('content-length')).toBe('4096')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="_berblick Q4 (final).png"; filename*=UTF-8''%C3%9Cberblick%20Q4%20%28final%29.png`,
    )
    expect(res.headers.get('x-request-id')).toBeTruthy()
  })

  it('serves an HTML upload as a download, never inline', async () => {
    const task = await newTask()
    const created = await upload(
      task.id,
      team.member,
      '<script>alert(1)</script>',
      'x.html',
      'text/html',
    )
    const res = await download(task.id, created.body.id, team.member)
    expect(res.headers.get('content-disposition')).toStartWith('attachment;')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('content-security-policy')).toContain('sandbox')
  })

  it('answers 403 to an outsider, 401 anonymous, 404 for another task’s attachment', async () => {
    const task = await newTask()
    const other = await newTask()
    const created = await uploaded(task.id, team.member, 'private')
    const outsider = await answer(await download(task.id, created.id, team.outsider))
    expectProblemShape(outsider, 403)
    expect(outsider.text).not.toContain('private')
    expectProblemShape(await answer(await download(task.id, created.id, undefined)), 401)
    expectProblemShape(await answer(await download(other.id, created.id, team.member)), 404)
    expectProblemShape(await answer(await download(task.id, crypto.randomUUID(), team.member)), 404)
  })
})

describe('GET /tasks/:id/attachments', () => {
  it('lists a task’s attachments oldest first with page totals, to any member', async () => {
    const task = await newTask()
    const ids = []
    for (let i = 0; i < 3; i++)
      ids.push((await uploaded(task.id, team.member, `f${i}`, `f${i}.txt`)).id)
    const res = await server.request('GET', `${attachmentsOf(task.id)}?limit=2`, {
      token: team.viewer.access,
    })
    expect(res.status).toBe(200)
    expect(res.body.data.map((a: { id: string }) => a.id)).toEqual(ids.slice(0, 2))
    expect(res.body.pagination).toEqual({ page: 1, limit: 2, total: 3, pages: 2 })
    expect(res.text).not.toContain('file_path')
  })

  it('answers 403 to an outsider and 401 anonymous', async () => {
    const task = await newTask()
    await uploaded(task.id, team.member)
    expectProblemShape(
      await server.request('GET', attachmentsOf(task.id), { token: team.outsider.access }),
      403,
    )
    expectProblemShape(await server.request('GET', attachmentsOf(task.id)), 401)
  })
})

describe('DELETE /tasks/:id/attachments/:attachment_id', () => {
  const remove = (taskId: string, id: string, who: Person) =>
    server.request('DELETE', `${attachmentsOf(taskId)}/${id}`, { token: who.access })

  it('lets the uploader delete: the row and the file go, the activity stays', async () => {
    const task = await newTask()
    const created = await uploaded(task.id, team.member)
    const path = `${team.project.id}/${task.id}/${created.id}`
    expect(await storedFiles()).toContain(path)
    const res = await remove(task.id, created.id, team.member)
    expect(res.status).toBe(204)
    expect(await storedFiles()).not.toContain(path)
    expect((await download(task.id, created.id, team.member)).status).toBe(404)
    const rows = await server.db.sql`
      select action from activity_log where entity_id = ${created.id} order by created_at
    `
    expect(rows.map((r) => r.action)).toEqual(['attachment.created', 'attachment.deleted'])
  })

  it('removes the files of a deleted task once the delete has committed', async () => {
    const task = await newTask()
    const created = await uploaded(task.id, team.member)
    const path = `${team.project.id}/${task.id}/${created.id}`
    expect(await storedFiles()).toContain(path)
    const res = await server.request('DELETE', `/api/v1/tasks/${task.id}`, {
      token: team.owner.access,
    })
    expect(res.status).toBe(204)
    expect((await storedFiles()).filter((f) => f.includes(task.id))).toEqual([])
  })

  it('answers 403 to another member, a viewer and an outsider, keeping the file', async () => {
    const task = await newTask()
    const created = await uploaded(task.id, team.owner)
    for (const who of [team.member, team.viewer, team.outsider])
      expectProblemShape(await remove(task.id, created.id, who), 403)
    expect(await storedFiles()).toContain(`${team.project.id}/${task.id}/${created.id}`)
  })

  it('lets the project owner, a manager and an admin delete anyone’s attachment', async () => {
    const task = await newTask()
    for (const who of [team.owner, team.manager, team.admin]) {
      const created = await uploaded(task.id, team.member)
      expect((await remove(task.id, created.id, who)).status).toBe(204)
    }
    expect(await storedFiles()).not.toContainEqual(expect.stringContaining(task.id))
  })

  it('answers 404 for an unknown attachment', async () => {
    const task = await newTask()
    expectProblemShape(await remove(task.id, crypto.randomUUID(), team.owner), 404)
  })
})

describe('filenames and headers', () => {
  it('sanitises without ever keeping a path', () => {
    expect(sanitizeFilename('/abs/path/report.pdf')).toBe('report.pdf')
    expect(sanitizeFilename('  spaced  ')).toBe('spaced')
    expect(sanitizeFilename('')).toBe('file')
  })

  it('writes an RFC 6266 disposition with an ASCII fallback and an RFC 8187 filename*', () => {
    expect(contentDisposition('plain.txt')).toBe(
      `attachment; filename="plain.txt"; filename*=UTF-8''plain.txt`,
    )
    expect(contentDisposition('say "hi"\\.txt')).toBe(
      `attachment; filename="say _hi__.txt"; filename*=UTF-8''say%20%22hi%22%5C.txt`,
    )
    expect(contentDisposition("it's (1)*.txt")).toBe(
      `attachment; filename="it's (1)*.txt"; filename*=UTF-8''it%27s%20%281%29%2A.txt`,
    )
  })
})

describe('upload limits in the configuration', () => {
  const limits = (env: Record<string, string>) => {
    const config = loadConfig(env)
    return [config.maxUploadBytes, config.maxBodyBytes]
  }

  it('keeps MAX_BODY_BYTES above the upload limit plus multipart framing', () => {
    expect(limits({})).toEqual([10_485_760, 10_485_760 + 16_384])
    expect(limits({ MAX_UPLOAD_BYTES: '52428800' })).toEqual([52_428_800, 52_428_800 + 16_384])
    expect(limits({ MAX_BODY_BYTES: '65536' })).toEqual([65_536 - 16_384, 65_536])
    expect(limits({ MAX_UPLOAD_BYTES: '1000', MAX_BODY_BYTES: '65536' })).toEqual([1000, 65_536])
  })

  it('refuses a MAX_BODY_BYTES that leaves no room for the upload limit', () => {
    const problem = (env: Record<string, string>) => {
      try {
        loadConfig(env)
      } catch (error) {
        if (error instanceof ConfigError) return error.problems.join()
      }
      return ''
    }
    expect(problem({ MAX_UPLOAD_BYTES: '65536', MAX_BODY_BYTES: '65536' })).toStartWith(
      'MAX_BODY_BYTES',
    )
    expect(problem({ MAX_BODY_BYTES: '2048' })).toStartWith('MAX_BODY_BYTES')
    expect(problem({ MAX_UPLOAD_BYTES: '0' })).toStartWith('MAX_UPLOAD_BYTES')
  })

  it('puts uploads in DATA_DIR/uploads unless UPLOAD_DIR says otherwise', () => {
    expect(loadConfig({ DATA_DIR: '/srv/taskapi' }).uploadDir).toBe('/srv/taskapi/uploads')
    expect(loadConfig({ UPLOAD_DIR: '/mnt/files' }).uploadDir).toBe('/mnt/files')
  })
})
