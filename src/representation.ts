import { brotliCompressSync, constants } from 'node:zlib'
import { Elysia } from 'elysia'
import type { Config } from './config'

const pathOf = (url: string) => {
  const start = url.indexOf('/', url.indexOf('://') + 3)
  const end = url.indexOf('?', start)
  return start === -1 ? '/' : url.slice(start, end === -1 ? undefined : end)
}

const isPlainJson = (value: unknown): value is object =>
  Array.isArray(value) ||
  (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)

/** The content codings the client accepts, from Accept-Encoding (a `q=0` refuses one). */
export function acceptedCoding(header: string | null): 'br' | 'gzip' | undefined {
  if (!header) return undefined
  const accepted = new Set<string>()
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    if (name && !(q && Number(q.slice(2)) === 0)) accepted.add(name.trim())
  }
  if (accepted.has('br')) return 'br'
  if (accepted.has('gzip') || accepted.has('x-gzip')) return 'gzip'
  return undefined
}

/** Weak comparison (RFC 9110 section 13.1.2): does If-None-Match name this ETag, or `*`? */
export function noneMatch(header: string | null, etag: string): boolean {
  if (!header) return false
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '')
  const ours = opaque(etag)
  return header.split(',').some((tag) => tag.trim() === '*' || opaque(tag) === ours)
}

/**
 * The last step of every JSON answer, after the route's response schema has checked and cleaned
 * it:
 * - an authenticated GET that answers 200 gets an ETag (the route's own, as tasks have, or a hash
 *   of the body) and a matching If-None-Match gets 304 with no body. The route ran in full first,
 *   access checks included, so a caller who may no longer see the data gets their 403 or 404,
 *   never a 304;
 * - a body of COMPRESSION_MIN_BYTES or more is sent brotli- or gzip-compressed when the client
 *   accepts it (0 turns this off); `Vary: Accept-Encoding` on such bodies, and on every JSON
 *   answer to a client that sent no Accept-Encoding (its body is then not even measured).
 * The body is handed back to Elysia as text (or compressed bytes) with its headers in `set`, so
 * Elysia builds the one Response; when nothing here needs the text (a route's own ETag, no
 * Accept-Encoding) Elysia serialises the value itself.
 */
export function representations(config: Config) {
  const minBytes = config.compressionMinBytes
  return new Elysia({ name: 'representations' }).mapResponse(
    { as: 'global' },
    ({ request, responseValue, set }) => {
      if (!isPlainJson(responseValue)) return undefined
      const status = set.status ?? 200
      let text: string | undefined
      if (
        request.method === 'GET' &&
        status === 200 &&
        request.headers.has('authorization') &&
        !pathOf(request.url).startsWith('/api/v1/auth/')
      ) {
        let etag = set.headers.etag as string | undefined
        if (etag === undefined) {
          text = JSON.stringify(responseValue)
          etag = `W/"${Bun.hash(text).toString(36)}"`
          set.headers.etag = etag
        }
        if (noneMatch(request.headers.get('if-none-match'), etag)) {
          set.status = 304
          return new Response(null, { status: 304 })
        }
      }
      set.headers['content-type'] ??= 'application/json'
      if (minBytes === 0) return body(text)
      const acceptEncoding = request.headers.get('accept-encoding')
      if (acceptEncoding === null) {
        addVary(set.headers)
        return body(text)
      }
      text ??= JSON.stringify(responseValue)
      if (text.length < minBytes) return body(text)
      addVary(set.headers)
      const coding = acceptedCoding(acceptEncoding)
      if (!coding) return body(text)
      set.headers['content-encoding'] = coding
      return body(
        coding === 'br'
          ? brotliCompressSync(text, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } })
          : Bun.gzipSync(text, { level: 6 }),
      )
    },
  )
}

/**
 * What mapResponse hands back: Elysia replaces the answer with any value that is not undefined
 * and maps it like a handler's (text or bytes with `set`'s status and headers), though its types
 * name Response only. Undefined leaves the handler's value to Elysia.
 */
const body = (value: string | Uint8Array | undefined) => value as unknown as Response | undefined

const addVary = (headers: Record<string, unknown>) => {
  const vary = headers.vary
  headers.vary = vary ? `${vary}, Accept-Encoding` : 'Accept-Encoding'
}
