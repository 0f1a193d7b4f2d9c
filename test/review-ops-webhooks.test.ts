import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import { isPublicAddress } from '../src/modules/webhooks/destination'
import { createProject } from './factories'
import { registerUser, startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
let owner: Awaited<ReturnType<typeof registerUser>>
beforeAll(async () => {
  server = await startServer({
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_POLL_MS: '25',
    WEBHOOK_RETRY_BASE_MS: '60000',
    WEBHOOK_TIMEOUT_MS: '5000',
  })
  owner = await registerUser(server)
}, 60_000)
afterAll(() => server.close(), 30_000)

async function hookOn(projectId: string, url: string) {
  const res = await server.request('POST', `/api/v1/projects/${projectId}/webhooks`, {
    token: owner.access,
    body: { url, events: ['task.created'] },
  })
  expect(res.status).toBe(201)
}

async function newTask(projectId: string, title: string) {
  const res = await server.request('POST', '/api/v1/tasks', {
    token: owner.access,
    body: { project_id: projectId, title },
  })
  expect(res.status).toBe(201)
}

async function until(probe: () => boolean, ms: number) {
  const end = Date.now() + ms
  while (!probe() && Date.now() < end) await Bun.sleep(10)
  return probe()
}

describe('webhook delivery worker', () => {
  it('does not hold other receivers’ deliveries while one receiver hangs', async () => {
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let hangingCalls = 0
    const hanging = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch() {
        hangingCalls += 1
        await held
        return new Response('late')
      },
    })
    const arrivals: number[] = []
    const fast = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(request) {
        await request.text()
        arrivals.push(Date.now())
        return new Response(null, { status: 204 })
      },
    })
    try {
      const slowProject = await createProject(server, owner)
      const fastProject = await createProject(server, owner)
      await hookOn(slowProject.id, `http://127.0.0.1:${hanging.port}/`)
      await hookOn(fastProject.id, `http://127.0.0.1:${fast.port}/`)
      await newTask(slowProject.id, 'To the receiver that hangs')
      expect(await until(() => hangingCalls >= 1, 5_000)).toBe(true)

      // While that attempt waits out its 5 s timeout, another project's event is delivered.
      const sent = Date.now()
      await newTask(fastProject.id, 'To the receiver that answers')
      expect(await until(() => arrivals.length >= 1, 8_000)).toBe(true)
      expect((arrivals[0] as number) - sent).toBeLessThan(2_000)
    } finally {
      release()
      hanging.stop(true)
      fast.stop(true)
    }
  })
})

describe('webhook destinations', () => {
  it('refuses the IPv6 ranges that carry or reach non-public IPv4 addresses, and other reserved ones', () => {
    for (const address of [
      // IPv4-compatible (deprecated) and IPv4-translated forms of 127.0.0.1.
      '::7f00:1',
      '::ffff:0:7f00:1',
      // Local-use NAT64 prefix (RFC 8215): 10.0.0.1 through a NAT64 of the network.
      '64:ff9b:1::a00:1',
      // 6to4 of 127.0.0.1 and of 10.0.0.1, Teredo, deprecated site-local.
      '2002:7f00:1::',
      '2002:a00:1::1',
      '2001::1',
      'fec0::1',
    ])
      expect(`${address}: ${isPublicAddress(address)}`).toBe(`${address}: false`)
    for (const address of ['2606:4700:4700::1111', '2001:4860:4860::8888', '8.8.8.8', '1.1.1.1'])
      expect(`${address}: ${isPublicAddress(address)}`).toBe(`${address}: true`)
  })
})
