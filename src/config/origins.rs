//! `http.cors_origins`: the web origins whose pages may call the API from a
//! browser, read and checked as they load.

use serde::{Deserialize, Deserializer};

/// Origins allowed to make cross-origin requests: none (the default), a
/// list of `scheme://host[:port]`, or any (`"*"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    any: bool,
    /// Each as a browser sends it in `Origin` (no trailing slash).
    listed: Vec<String>,
}

impl CorsOrigins {
    /// Reads the configured list: each entry `"*"` or an origin.
    pub fn parse(entries: &[String]) -> Result<CorsOrigins, String> {
        let mut origins = CorsOrigins::default();
        for entry in entries {
            let entry = entry.trim();
            if entry == "*" {
                origins.any = true;
            } else {
                origins.listed.push(origin(entry)?);
            }
        }
        Ok(origins)
    }

    /// Whether no cross-origin request is allowed.
    pub fn is_empty(&self) -> bool {
        !self.any && self.listed.is_empty()
    }

    /// Whether a page of `origin` (an `Origin` header) may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        self.any || self.listed.iter().any(|o| o == origin)
    }
}

/// `scheme://host[:port]`, as browsers write it, or why not.
fn origin(entry: &str) -> Result<String, String> {
    let bad = || {
        format!("http.cors_origins: {entry:?} is not an origin (scheme://host[:port], or \"*\")")
    };
    let (scheme, rest) = entry.split_once("://").ok_or_else(bad)?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !matches!(scheme, "http" | "https") || !valid_host {
        return Err(bad());
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// A list in a file; in an environment variable, one string of
/// comma-separated origins.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entries {
    List(Vec<String>),
    Text(String),
}

impl<'de> Deserialize<'de> for CorsOrigins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = match Entries::deserialize(deserializer)? {
            Entries::List(list) => list,
            Entries::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
        };
        CorsOrigins::parse(&entries).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(entries: &[&str]) -> Result<CorsOrigins, String> {
        CorsOrigins::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn listed_origins_are_allowed_exactly() {
        let o = parse(&["https://App.example.com/", "http://localhost:5173"]).unwrap();
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("http://localhost:5173"));
        assert!(!o.allows("http://app.example.com"));
        assert!(!o.allows("https://evil.example.com"));
        assert!(parse(&[]).unwrap().is_empty());
        assert!(parse(&["*"]).unwrap().allows("https://anything.example"));
    }

    #[test]
    fn what_is_not_an_origin_is_refused_naming_the_key() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/app",
            "https://",
        ] {
            let e = parse(&[bad]).unwrap_err();
            assert!(e.starts_with("http.cors_origins"), "{e}");
        }
    }
}
