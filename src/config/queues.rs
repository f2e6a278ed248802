//! `worker.queues` / `--queues`: which queues a worker serves and with how
//! many slots, written `NAME[=N],…`.

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Serde glue: `worker.queues` is parsed as it loads.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<QueueSpec>, D::Error> {
    let text = String::deserialize(d)?;
    parse_queues(&text).map_err(serde::de::Error::custom)
}

/// One entry of `worker.queues` / `--queues`: a queue and, if given, its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub slots: Option<usize>,
}

/// Parses "NAME[=N],…" (for instance "gpu=1,default=8" or "default").
pub fn parse_queues(text: &str) -> Result<Vec<QueueSpec>, ConfigError> {
    let mut specs: Vec<QueueSpec> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, slots) = match part.split_once('=') {
            Some((name, n)) => {
                let n: usize = n.trim().parse().map_err(|_| {
                    ConfigError::Value(format!(
                        "queue slots in {part:?} must be a positive integer"
                    ))
                })?;
                if n == 0 {
                    return Err(ConfigError::Value(format!(
                        "queue slots in {part:?} must be at least 1"
                    )));
                }
                (name.trim(), Some(n))
            }
            None => (part, None),
        };
        if name.is_empty() {
            return Err(ConfigError::Value(format!(
                "queue name missing in {part:?}"
            )));
        }
        if specs.iter().any(|s| s.name == name) {
            return Err(ConfigError::Value(format!(
                "queue {name:?} is listed twice"
            )));
        }
        specs.push(QueueSpec {
            name: name.to_string(),
            slots,
        });
    }
    if specs.is_empty() {
        return Err(ConfigError::Value(
            "at least one queue must be served".into(),
        ));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lists_parse() {
        let q = parse_queues("gpu=1, default=8,mail").unwrap();
        assert_eq!(
            q,
            vec![
                QueueSpec {
                    name: "gpu".into(),
                    slots: Some(1)
                },
                QueueSpec {
                    name: "default".into(),
                    slots: Some(8)
                },
                QueueSpec {
                    name: "mail".into(),
                    slots: None
                },
            ]
        );
        assert!(parse_queues("gpu=0").is_err());
        assert!(parse_queues("gpu=x").is_err());
        assert!(parse_queues("a,a").is_err());
        assert!(parse_queues(" , ").is_err());
    }
}
