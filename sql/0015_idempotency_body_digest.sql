-- 0015_idempotency_body_digest: an upload's Idempotency-Key is bound to its file too. The route
-- reads a multipart body itself (the key middleware cannot), so the SHA-256 of the file (name,
-- type and bytes) is stored with the answer, and a retry with the same key and another file is
-- told apart (422) instead of getting the first answer. Null for every other request.
alter table idempotency_keys add column body_digest char(64);

-- Which request holds a key still running (a random id per claim, set again when a claim is taken
-- over). A claim whose request has not answered within the stale bound (its process died) may be
-- taken over by a retry; the first request's answer is stored only under its own claim, in its
-- change's transaction, so a late commit of the first request after a takeover rolls back.
alter table idempotency_keys add column claim uuid;
