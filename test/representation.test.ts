import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { createProject, createTask } from './factories'
import { registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer({ COMPRESSION_MIN_BYTES: '1024' })
}, 60_000)
afterAll(() => server.close(), 30_000)

describe('conditional GET', () => {
  it('a task answers 304 to its ETag, and 200 with a new ETag once it changed', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    const task = await createTask(server, project.id, owner)
    const path = `/api/v1/tasks/${task.id}`
    const first = await server.request('GET', path, { token: owner.access })
    expect(first.status).toBe(200)
    const etag = first.headers.get('etag') as string
    expect(etag).toBe(`"${first.body.version}"`)
    const again = await server.request('GET', path, {
      token: owner.access,
      headers: { 'if-none-match': etag },
    })
    expect(again.status).toBe(304)
    expect(again.text).toBe('')
    expect(again.headers.get('etag')).toBe(etag)
    expect(again.headers.get('cache-control')).toBe('private, no-cache')
    const changed = await server.request('PATCH', path, {
      token: owner.access,
      body: { title: 'Renamed' },
    })
    expect(changed.status).toBe(200)
    const after = await server.request('GET', path, {
      token: owner.access,
      headers: { 'if-none-match': etag },
    })
    expect(after.status).toBe(200)
    expect(after.body.title).toBe('Renamed')
    expect(after.headers.get('etag')).not.toBe(etag)
  })

  it('projects and lists answer 304 to a matching If-None-Match (weak comparison, lists of tags)', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    for (const path of [`/api/v1/projects/${project.id}`, '/api/v1/projects', '/api/v1/tasks']) {
      const first = await server.request('GET', path, { token: owner.access })
      expect(first.status).toBe(200)
      const etag = first.headers.get('etag') as string
      expect(etag).toMatch(/^W\/"[0-9a-z]+"$/)
      for (const header of [etag, etag.slice(2), `"nope", ${etag}`, '*']) {
        const again = await server.request('GET', path, {
          token: owner.access,
          headers: { 'if-none-match': header },
        })
        expect(again.status).toBe(304)
      }
      const other = await server.request('GET', path, {
        token: owner.access,
        headers: { 'if-none-match': 'W/"other"' },
      })
      expect(other.status).toBe(200)
    }
  })

  it('a removed member gets no cached project data: 403/404 and a list without it, never 304', async () => {
    const owner = await registerUser(server)
    const member = await registerUser(server)
    const project = await createProject(server, owner, [[member, 'member']])
    const task = await createTask(server, project.id, owner)
    const paths = [`/api/v1/projects/${project.id}`, `/api/v1/tasks/${task.id}`, '/api/v1/projects']
    const etags = new Map<string, string>()
    for (const path of paths) {
      const res = await server.request('GET', path, { token: member.access })
      expect(res.status).toBe(200)
      etags.set(path, res.headers.get('etag') as string)
    }
    const removed = await server.request(
      'DELETE',
      `/api/v1/projects/${project.id}/members/${member.id}`,
      { token: owner.access },
    )
    expect(removed.status).toBe(204)
    for (const path of paths.slice(0, 2)) {
      const res = await server.request('GET', path, {
        token: member.access,
        headers: { 'if-none-match': etags.get(path) as string },
      })
      expect([403, 404]).toContain(res.status)
      expect(res.text).not.toContain(project.name)
    }
    const list = await server.request('GET', '/api/v1/projects', {
      token: member.access,
      headers: { 'if-none-match': etags.get('/api/v1/projects') as string },
    })
    expect(list.status).toBe(200)
    expect(list.text).not.toContain(project.id)
  })

  it('another user with the same ETag gets their own answer, not a 304 for someone else’s data', async () => {
    const owner = await registerUser(server)
    const outsider = await registerUser(server)
    const project = await createProject(server, owner)
    const path = `/api/v1/projects/${project.id}`
    const first = await server.request('GET', path, { token: owner.access })
    const res = await server.request('GET', path, {
      token: outsider.access,
      headers: { 'if-none-match': first.headers.get('etag') as string },
    })
    expect([403, 404]).toContain(res.status)
  })
})

describe('compression', () => {
  const raw = (path: string, token: string, acceptEncoding?: string) =>
    fetch(server.url + path, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }),
      },
      decompress: false,
    } as RequestInit)

  it('compresses a large JSON answer only when the client accepts it', async () => {
    const owner = await registerUser(server)
    const project = await createProject(server, owner)
    for (let i = 0; i < 20; i += 1)
      await createTask(server, project.id, owner, {
        description: `a longer description ${i} `.repeat(5),
      })
    const path = `/api/v1/tasks?project_id=${project.id}&limit=100`
    const plain = await raw(path, owner.access, 'identity')
    expect(plain.headers.get('content-encoding')).toBeNull()
    expect(plain.headers.get('vary')).toContain('Accept-Encoding')
    const text = await plain.text()
    expect(text.length).toBeGreaterThan(1024)
    const body = JSON.parse(text)
    expect(body.data).toHaveLength(20)

    const gzip = await raw(path, owner.access, 'gzip, deflate')
    expect(gzip.headers.get('content-encoding')).toBe('gzip')
    const zipped = Buffer.from(await gzip.arrayBuffer())
    expect(zipped.length).toBeLessThan(text.length)
    expect(JSON.parse(gunzipSync(zipped).toString())).toEqual(body)

    const br = await raw(path, owner.access, 'gzip;q=0.5, br')
    expect(br.headers.get('content-encoding')).toBe('br')
    expect(
      JSON.parse(brotliDecompressSync(Buffer.from(await br.arrayBuffer())).toString()),
    ).toEqual(body)

    const refused = await raw(path, owner.access, 'gzip;q=0, br;q=0')
    expect(refused.headers.get('content-encoding')).toBeNull()
    expect(JSON.parse(await refused.text())).toEqual(body)
  })

  it('leaves small answers alone', async () => {
    const user = await registerUser(server)
    const res = await raw('/api/v1/users/me', user.access, 'gzip, br')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-encoding')).toBeNull()
    expect(((await res.json()) as { id: string }).id).toBe(user.id)
  })
})
