//! Payload schemas: a kind may declare a JSON Schema (in its code, or in
//! `[kinds.NAME] schema` / `schema_file`); it is compiled once, at start,
//! and every create request's payload is checked against it before
//! anything is written.

use std::path::Path;

use serde_json::Value;

/// Most problems one refusal lists; the rest are counted.
const MAX_LISTED: usize = 5;

/// A compiled payload schema, with the document it was compiled from (which
/// `GET /v1/kinds` shows).
pub struct PayloadSchema {
    document: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for PayloadSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadSchema")
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

impl PayloadSchema {
    /// Compiles a schema document. Formats (`"format": "uri"`, …) are
    /// checked, not only noted. Remote `$ref`s are not fetched.
    pub fn compile(document: Value) -> Result<PayloadSchema, String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&document)
            .map_err(|e| e.to_string())?;
        Ok(PayloadSchema {
            document,
            validator,
        })
    }

    /// Reads and compiles the schema in `path`.
    pub fn from_file(path: &Path) -> Result<PayloadSchema, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let document = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        PayloadSchema::compile(document)
    }

    /// The schema as written.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Checks a payload: what is wrong, each problem led by the JSON pointer
    /// of the failing value (`/audio_url: 42 is not of type "string"`).
    pub fn check(&self, payload: &Value) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut more = 0;
        for error in self.validator.iter_errors(payload) {
            if problems.len() == MAX_LISTED {
                more += 1;
                continue;
            }
            problems.push(describe(&error));
        }
        if problems.is_empty() {
            return Ok(());
        }
        if more > 0 {
            problems.push(format!("and {more} more"));
        }
        Err(problems.join("; "))
    }
}

/// One problem as a client reads it. A missing property is named by its own
/// path (`/audio_url: is required`) rather than its parent's.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let at = error.instance_path().to_string();
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
        let name = property
            .as_str()
            .map_or_else(|| property.to_string(), str::to_string);
        return format!("{at}/{}: is required", escape_pointer(&name));
    }
    let at = if at.is_empty() { "/".to_string() } else { at };
    format!("{at}: {error}")
}

/// A property name as a JSON pointer token (RFC 6901).
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> PayloadSchema {
        PayloadSchema::compile(json!({
            "type": "object",
            "required": ["audio_url"],
            "properties": {
                "audio_url": {"type": "string", "format": "uri"},
                "language": {"enum": ["en", "de"]}
            },
            "additionalProperties": false
        }))
        .unwrap()
    }

    #[test]
    fn good_payload_passes() {
        schema()
            .check(&json!({"audio_url": "https://example.com/a.wav", "language": "en"}))
            .unwrap();
    }

    #[test]
    fn problems_name_the_failing_path() {
        let s = schema();
        let err = s.check(&json!({})).unwrap_err();
        assert_eq!(err, "/audio_url: is required");
        let err = s.check(&json!({"audio_url": 42})).unwrap_err();
        assert!(err.starts_with("/audio_url: 42 is not of type"), "{err}");
        let err = s.check(&json!({"audio_url": "not a uri"})).unwrap_err();
        assert!(err.contains("/audio_url") && err.contains("uri"), "{err}");
        let err = s
            .check(&json!({"audio_url": "https://x.y/", "colour": 1}))
            .unwrap_err();
        assert!(err.starts_with("/: ") && err.contains("colour"), "{err}");
    }

    #[test]
    fn a_schema_that_does_not_compile_says_why() {
        let err = PayloadSchema::compile(json!({"type": 42})).unwrap_err();
        assert!(!err.is_empty());
        let err = PayloadSchema::from_file(Path::new("/nonexistent/s.json")).unwrap_err();
        assert!(err.contains("/nonexistent/s.json"), "{err}");
    }
}
