import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from 'bun:test'
import pkg from '../package.json'
import { startServer, type TestServer } from './helpers'

// Bun 1.4.4 applies test/setup.ts's default only to the first file of a run: each file sets it.
setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startServer()
}, 60_000)
afterAll(() => server.close(), 30_000)

const get = (path: string) => fetch(`${server.url}${path}`)

describe('GET /docs', () => {
  it('is an HTML page under a CSP that allows this origin only', async () => {
    const res = await get('/docs')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toStartWith('text/html')
    const csp = res.headers.get('content-security-policy') ?? ''
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/)
        return [name, values] as const
      }),
    )
    expect(directives.get('default-src')).toEqual(["'none'"])
    expect(directives.get('script-src')).toEqual(["'self'"])
    expect(directives.get('connect-src')).toEqual(["'self'"])
    expect(directives.get('frame-ancestors')).toEqual(["'none'"])
    // No other origin, no scheme wildcard, no eval anywhere in the policy.
    expect(csp).not.toMatch(/https?:|\*|unsafe-eval|data:\s*;?\s*script/)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  })

  it('refers only to same-origin URLs, each answering 200 with the right type', async () => {
    const html = await (await get('/docs')).text()
    const urls = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] ?? '')
    expect(urls.length).toBeGreaterThanOrEqual(2)
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>\s*\S/)
    for (const url of urls) {
      expect(`${url}: ${url.startsWith('/') && !url.startsWith('//')}`).toBe(`${url}: true`)
      const res = await get(url)
      expect(`${url}: ${res.status}`).toBe(`${url}: 200`)
      if (url.endsWith('.js'))
        expect(res.headers.get('content-type')).toStartWith('text/javascript')
      await res.arrayBuffer()
    }
  })

  it('loads the pinned Scalar bundle from this server', async () => {
    const html = await (await get('/docs')).text()
    const version = pkg.dependencies['@scalar/api-reference']
    const path = `/docs/assets/scalar-${version}.js`
    expect(html).toContain(`src="${path}"`)
    const res = await get(path)
    expect(res.headers.get('cache-control')).toContain('immutable')
    const bundle = await res.text()
    expect(bundle.length).toBeGreaterThan(1_000_000)
    expect(bundle).toContain('createApiReference')
  })

  it('starts Scalar with its hosted services turned off', async () => {
    const res = await get('/docs/assets/init.js')
    expect(res.status).toBe(200)
    const script = await res.text()
    const config = JSON.parse(script.slice(script.indexOf('{'), script.lastIndexOf('}') + 1))
    expect(config).toMatchObject({
      url: '/docs/json',
      withDefaultFonts: false,
      telemetry: false,
      agent: { disabled: true },
      mcp: { disabled: true },
      showToolbar: 'never',
      showDeveloperTools: 'never',
      hideClientButton: true,
    })
    expect(config.proxyUrl).toBeUndefined()
  })

  it('keeps the docs routes out of the OpenAPI document', async () => {
    const doc = (await server.request('GET', '/docs/json')).body
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs'))).toEqual([])
  })
})
