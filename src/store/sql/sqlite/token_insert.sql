INSERT INTO api_tokens (name, role, product, token_hash, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
