import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'

type Json = Record<string, unknown>
type ElysiaOpenApiOptions = NonNullable<Parameters<typeof openapi>[0]>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
// The helper member Elysia adds to coerce query numbers: a string with format integer or numeric.
const isCoercionHelper = (s: unknown) =>
  isObject(s) && s.type === 'string' && (s.format === 'integer' || s.format === 'numeric')

/**
 * Corrects what the generator gets wrong, in place: error bodies are application/problem+json,
 * a 204 has no content, and query numbers show their declared type instead of Elysia's
 * string-or-integer union.
 */
export function polishOpenApi(doc: Json): Json {
  const paths = isObject(doc.paths) ? doc.paths : {}
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue
    for (const op of Object.values(item)) {
      if (!isObject(op)) continue
      for (const [status, response] of Object.entries(isObject(op.responses) ? op.responses : {})) {
        if (!isObject(response)) continue
        const content = isObject(response.content) ? response.content : undefined
        if (status === '204') delete response.content
        else if (Number(status) >= 400 && content?.['application/json']) {
          response.content = { 'application/problem+json': content['application/json'] }
        }
      }
      for (const parameter of Array.isArray(op.parameters) ? op.parameters : []) {
        if (!isObject(parameter) || !isObject(parameter.schema)) continue
        const { anyOf, ...rest } = parameter.schema
        if (!Array.isArray(anyOf) || !anyOf.some(isCoercionHelper)) continue
        const declared = anyOf.filter((m) => !isCoercionHelper(m))
        if (declared.length === 1 && isObject(declared[0]))
          parameter.schema = { ...rest, ...declared[0] }
      }
    }
  }
  return doc
}

/** Interactive docs at /docs and the OpenAPI 3 document at /docs/json, generated from the routes. */
export function apiDocs(documentation: ElysiaOpenApiOptions['documentation']) {
  return new Elysia({ name: 'api-docs' })
    .onAfterHandle({ as: 'global' }, ({ path, response }) => {
      if (path === '/docs/json' && isObject(response)) return polishOpenApi(response)
    })
    .use(openapi({ path: '/docs', specPath: '/docs/json', documentation }))
}
