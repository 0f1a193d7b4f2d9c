-- 0015_idempotency_body_digest: an upload's Idempotency-Key is bound to its file too. The route
-- reads a multipart body itself (the key middleware cannot), so the SHA-256 of the file (name,
-- type and bytes) is stored with the answer, and a retry with the same key and another file is
-- told apart (422) instead of getting the first answer. Null for every other request.
alter table idempotency_keys add column body_digest char(64);
