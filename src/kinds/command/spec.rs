//! A command kind as the configuration declares it, checked at start: the
//! program and its arguments, where it runs, the environment it gets (and
//! that errand's own configuration never reaches it), and its limits.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{KindSettings, Settings};
use crate::kinds::RegistryError;

/// Variables errand sets for each attempt; a configuration may not set
/// names with this prefix.
pub(super) const RESERVED_PREFIX: &str = "ERRAND_";

/// What never reaches a program, whatever `env_passthrough` says: errand's
/// database URL, and everything of its configuration (`ERRAND__*`).
const NEVER_PASSED: &[&str] = &["DATABASE_URL"];

/// One command kind, ready to run.
#[derive(Debug, Clone)]
pub(super) struct CommandSpec {
    pub kind: String,
    /// The program as written, and its arguments.
    pub argv: Vec<String>,
    /// Absolute: where the program runs.
    pub workdir: PathBuf,
    /// The environment every attempt starts from (passed-through variables,
    /// then the configured ones).
    pub env: BTreeMap<String, String>,
    pub kill_grace: Duration,
    pub max_output_bytes: usize,
    /// Where attempts' scratch folders are made.
    pub scratch_root: PathBuf,
}

impl CommandSpec {
    /// Checks `[kinds.NAME]` and reads the passed-through variables from
    /// errand's own environment now.
    pub fn new(
        name: &str,
        argv: &[String],
        kind: &KindSettings,
        settings: &Settings,
    ) -> Result<CommandSpec, RegistryError> {
        let key = |k: &str| format!("kinds.{name}.{k}");
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(RegistryError::new(key("command"), "must name a program"));
        }
        let defaults = &settings.commands;
        let passthrough = kind
            .env_passthrough
            .as_ref()
            .unwrap_or(&defaults.env_passthrough);
        let mut env = BTreeMap::new();
        for var in passthrough {
            check_passthrough(var).map_err(|p| RegistryError::new(key("env_passthrough"), p))?;
            if let Ok(value) = std::env::var(var) {
                env.insert(var.clone(), value);
            }
        }
        for (var, value) in &kind.env {
            check_variable(var, value).map_err(|p| RegistryError::new(key("env"), p))?;
            env.insert(var.clone(), value.clone());
        }
        let max_output_bytes = kind.max_output_bytes.unwrap_or(defaults.max_output_bytes);
        if max_output_bytes == 0 {
            return Err(RegistryError::new(
                key("max_output_bytes"),
                "must be more than 0",
            ));
        }
        let workdir = settings
            .base_dir
            .join(kind.workdir.as_deref().unwrap_or(Path::new(".")));
        let scratch_root = match defaults.scratch_dir.as_os_str().is_empty() {
            true => std::env::temp_dir(),
            false => settings.base_dir.join(&defaults.scratch_dir),
        };
        Ok(CommandSpec {
            kind: name.to_string(),
            argv: argv.to_vec(),
            workdir: std::path::absolute(&workdir).unwrap_or(workdir),
            env,
            kill_grace: kind.kill_grace.unwrap_or(defaults.kill_grace),
            max_output_bytes,
            scratch_root: std::path::absolute(&scratch_root).unwrap_or(scratch_root),
        })
    }

    /// The program to start: a path with a `/` is taken from the working
    /// folder, a bare name is looked up on the program's own `PATH`.
    pub fn program(&self) -> Result<PathBuf, String> {
        let program = &self.argv[0];
        if !self.workdir.is_dir() {
            return Err(format!(
                "its working folder {} does not exist",
                self.workdir.display()
            ));
        }
        if program.contains('/') {
            let path = self.workdir.join(program);
            return match executable(&path) {
                Ok(()) => Ok(path),
                Err(why) => Err(format!("program {program:?} ({}) {why}", path.display())),
            };
        }
        let search = self.env.get("PATH").map(String::as_str).unwrap_or_default();
        std::env::split_paths(search)
            .map(|dir| self.workdir.join(dir).join(program))
            .find(|path| executable(path).is_ok())
            .ok_or_else(|| {
                format!("program {program:?} was not found on the program's PATH ({search:?})")
            })
    }
}

/// Why `path` can't be run, if it can't.
fn executable(path: &Path) -> Result<(), &'static str> {
    let meta = std::fs::metadata(path).map_err(|_| "does not exist")?;
    if !meta.is_file() {
        return Err("is not a file");
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("is not executable");
    }
    Ok(())
}

/// A name in `env_passthrough`: never errand's own configuration.
fn check_passthrough(var: &str) -> Result<(), String> {
    if NEVER_PASSED.contains(&var) || var.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "{var} is errand's own configuration; it never reaches a program"
        ));
    }
    Ok(())
}

/// A variable set in `env`: a usable name, not one errand sets itself.
fn check_variable(var: &str, value: &str) -> Result<(), String> {
    if var.is_empty() || var.contains(['=', '\0']) || value.contains('\0') {
        return Err(format!("{var:?} is not a usable environment variable"));
    }
    if var.starts_with(RESERVED_PREFIX) {
        return Err(format!(
            "{var}: names starting with {RESERVED_PREFIX} are set by errand"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str], kind: KindSettings) -> Result<CommandSpec, RegistryError> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        CommandSpec::new("wc", &argv, &kind, &Settings::defaults())
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        let s = spec(&["sh", "-c", "true"], KindSettings::default()).unwrap();
        assert!(s.program().unwrap().ends_with("sh"));
        let s = spec(&["no-such-program-here"], KindSettings::default()).unwrap();
        let err = s.program().unwrap_err();
        assert!(
            err.contains("no-such-program-here") && err.contains("PATH"),
            "{err}"
        );
        let s = spec(&["./missing.sh"], KindSettings::default()).unwrap();
        assert!(s.program().unwrap_err().contains("does not exist"));
    }

    #[test]
    fn errands_configuration_is_never_passed_through() {
        for var in ["DATABASE_URL", "ERRAND__CALLBACKS__SECRET"] {
            let kind = KindSettings {
                env_passthrough: Some(vec![var.into()]),
                ..Default::default()
            };
            let err = spec(&["true"], kind).unwrap_err();
            assert_eq!(err.key, "kinds.wc.env_passthrough", "{err}");
        }
        let kind = KindSettings {
            env: [("ERRAND_ATTEMPT".to_string(), "9".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(spec(&["true"], kind).unwrap_err().key, "kinds.wc.env");
        assert_eq!(
            spec(&[], KindSettings::default()).unwrap_err().key,
            "kinds.wc.command"
        );
    }
}
