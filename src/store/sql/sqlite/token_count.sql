SELECT count(*) FROM api_tokens
