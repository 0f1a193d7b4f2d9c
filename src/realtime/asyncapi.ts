export const asyncApiDocument = {}
