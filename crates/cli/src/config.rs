//! Reading a registry's `config.yml` (distribution's format) into a backend name, its
//! parameters and its storage middleware chain, with distribution's environment overrides.
//!
//! Only the parts of the file that concern storage are read: `storage:` (exactly one backend
//! section, plus the non-backend keys `cache`, `maintenance`, `redirect`, `delete` and `tag`,
//! which are ignored apart from `redirect.disable`) and `middleware: storage:`. Everything else
//! a registry's configuration holds (`http`, `auth`, …) is left alone, so the registry's own file
//! can be used unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regstore_driver_api::{MiddlewareConfig, Parameters};
use serde_yaml_ng::Value as Yaml;

use crate::error::{CliError, CliResult};

/// Keys under `storage:` that configure the registry's use of storage rather than a backend.
pub const NON_BACKEND_KEYS: &[&str] = &["cache", "maintenance", "redirect", "delete", "tag"];

/// Where the embedded default keeps its data when nothing else is configured.
pub const DATA_DIR_ENV: &str = "REGSTORE_DATA_DIR";

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "REGSTORE_CONFIG";

/// A snapshot of the process environment, so parsing is testable without touching the real one.
pub type Env = BTreeMap<String, String>;

/// Takes a snapshot of the environment (variables that are not UTF-8 are left out).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The storage part of a registry configuration, ready to build a driver from.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// Where the configuration came from: the file path, or `embedded default (<dir>)`.
    pub origin: String,
    /// The backend's registered name (`filesystem`, `s3`, …), as written in the file.
    pub backend: String,
    /// The backend's parameters (`storage: <backend>:` map, with environment overrides).
    pub params: Parameters,
    /// The `middleware: storage:` entries in chain order (disabled ones included; the driver
    /// registry skips them).
    pub middlewares: Vec<MiddlewareConfig>,
    /// `storage: redirect: disable: true` — the registry never redirects, so `url` says so.
    pub redirect_disabled: bool,
}

impl StorageConfig {
    /// Loads the configuration the command line and environment select: `path` if given, else
    /// the file named by `$REGSTORE_CONFIG`, else the embedded filesystem default in the data
    /// directory (created on demand). Environment overrides are applied in every case.
    pub fn load(path: Option<&Path>, env: &Env) -> CliResult<StorageConfig> {
        let path: Option<PathBuf> = match path {
            Some(p) => Some(p.to_owned()),
            None => env
                .get(CONFIG_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        };
        let mut config = match path {
            Some(p) => Self::from_file(&p)?,
            None => Self::embedded_default(env)?,
        };
        config.apply_env(env)?;
        if config.origin.starts_with("embedded default") && config.backend == "filesystem" {
            if let Some(root) = config
                .params
                .get("rootdirectory")
                .and_then(|v| v.as_scalar_string())
            {
                std::fs::create_dir_all(&root).map_err(|e| CliError::io(root.clone(), e))?;
            }
        }
        Ok(config)
    }

    /// Reads and parses a configuration file, without environment overrides.
    pub fn from_file(path: &Path) -> CliResult<StorageConfig> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CliError::Config {
            origin: origin.clone(),
            key: "file".into(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_yaml(&text, &origin)
    }

    /// The embedded default: the filesystem backend rooted at [`data_dir`].
    pub fn embedded_default(env: &Env) -> CliResult<StorageConfig> {
        let dir = data_dir(env)?;
        Ok(StorageConfig {
            origin: format!("embedded default ({})", dir.display()),
            backend: "filesystem".into(),
            params: Parameters::new().with("rootdirectory", dir.display().to_string()),
            middlewares: Vec::new(),
            redirect_disabled: false,
        })
    }

    /// Parses configuration text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> CliResult<StorageConfig> {
        let err = |key: &str, message: String| CliError::Config {
            origin: origin.to_owned(),
            key: key.to_owned(),
            message,
        };
        let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| err("yaml", e.to_string()))?;
        let root = match &doc {
            Yaml::Mapping(m) => m,
            Yaml::Null => return Err(err("storage", "missing: the file is empty".into())),
            _ => return Err(err("yaml", "the document must be a map".into())),
        };
        let storage =
            match get_key(root, "storage") {
                Some(Yaml::Mapping(m)) => m,
                Some(Yaml::Null) | None => return Err(err(
                    "storage",
                    "missing: exactly one backend section is required (e.g. filesystem: or s3:)"
                        .into(),
                )),
                Some(_) => {
                    return Err(err(
                        "storage",
                        "must be a map with one backend section".into(),
                    ))
                }
            };

        let mut backends = Vec::new();
        let mut redirect_disabled = false;
        for (k, v) in storage {
            let Some(name) = k.as_str() else {
                return Err(err("storage", format!("keys must be strings, got {k:?}")));
            };
            if NON_BACKEND_KEYS.contains(&name.to_ascii_lowercase().as_str()) {
                if name.eq_ignore_ascii_case("redirect") {
                    redirect_disabled =
                        redirect_disable(v).map_err(|m| err("storage.redirect.disable", m))?;
                }
                continue;
            }
            backends.push((name.to_owned(), v));
        }
        let (backend, section) = match backends.as_slice() {
            [] => {
                return Err(err(
                    "storage",
                    "no backend section: exactly one is required (e.g. filesystem: or s3:)".into(),
                ))
            }
            [one] => one.clone(),
            many => {
                let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                return Err(err(
                    "storage",
                    format!(
                        "more than one backend configured ({}); exactly one is allowed",
                        names.join(", ")
                    ),
                ));
            }
        };
        let params: Parameters = match section {
            Yaml::Mapping(_) | Yaml::Null => serde_yaml_ng::from_value(section.clone())
                .map_err(|e| err(&format!("storage.{backend}"), e.to_string()))?,
            _ => {
                return Err(err(
                    &format!("storage.{backend}"),
                    "must be a map of parameters".into(),
                ))
            }
        };

        let middlewares = match get_key(root, "middleware") {
            None | Some(Yaml::Null) => Vec::new(),
            Some(Yaml::Mapping(m)) => parse_middlewares(get_key(m, "storage"), &err)?,
            Some(_) => return Err(err("middleware", "must be a map".into())),
        };

        Ok(StorageConfig {
            origin: origin.to_owned(),
            backend,
            params,
            middlewares,
            redirect_disabled,
        })
    }

    /// Applies distribution's environment overrides: `REGISTRY_STORAGE=<backend>` switches the
    /// backend (dropping the file's parameters for the old one), and
    /// `REGISTRY_STORAGE_<BACKEND>_<PARAM>=value` sets one parameter of the selected backend.
    /// A variable for a backend other than the selected one is an error naming the variable,
    /// because distribution would then see two backends.
    pub fn apply_env(&mut self, env: &Env) -> CliResult<()> {
        let origin = self.origin.clone();
        let err = |key: &str, message: String| CliError::Config {
            origin: origin.clone(),
            key: key.to_owned(),
            message,
        };
        if let Some(kind) = env.get("REGISTRY_STORAGE").map(|s| s.trim()) {
            if kind.is_empty() {
                return Err(err("REGISTRY_STORAGE", "must name a backend".into()));
            }
            if !kind.eq_ignore_ascii_case(&self.backend) {
                self.backend = kind.to_ascii_lowercase();
                self.params = Parameters::new();
                self.origin = format!("{} with REGISTRY_STORAGE={}", self.origin, self.backend);
            }
        }
        for (var, value) in env {
            let Some(rest) = var.strip_prefix("REGISTRY_STORAGE_") else {
                continue;
            };
            let Some((section, param)) = rest.split_once('_') else {
                continue;
            };
            let section = section.to_ascii_lowercase();
            if NON_BACKEND_KEYS.contains(&section.as_str()) {
                if section == "redirect" && param.eq_ignore_ascii_case("disable") {
                    self.redirect_disabled = redirect_disable(&Yaml::Mapping(
                        [(Yaml::from("disable"), Yaml::from(value.as_str()))]
                            .into_iter()
                            .collect(),
                    ))
                    .map_err(|m| err(var, m))?;
                }
                continue;
            }
            if param.is_empty() {
                return Err(err(var, "names no parameter".into()));
            }
            if section != self.backend.to_ascii_lowercase() {
                return Err(err(
                    var,
                    format!(
                        "configures backend {section:?} but the configuration uses {:?} \
                         (set REGISTRY_STORAGE={section} to switch backends)",
                        self.backend
                    ),
                ));
            }
            // Values stay strings: the typed getters accept "true"/"5242880", and a secret that
            // happens to look like a number must not be reinterpreted.
            self.params
                .insert(param.to_ascii_lowercase(), value.clone());
        }
        Ok(())
    }
}

/// Looks up `key` (case-insensitively, as distribution lower-cases keys) in a YAML map.
fn get_key<'a>(map: &'a serde_yaml_ng::Mapping, key: &str) -> Option<&'a Yaml> {
    map.iter()
        .find(|(k, _)| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(key)))
        .map(|(_, v)| v)
}

/// Reads `storage: redirect: disable:` (a boolean or a boolean string).
fn redirect_disable(section: &Yaml) -> Result<bool, String> {
    let Yaml::Mapping(m) = section else {
        return Ok(false);
    };
    match get_key(m, "disable") {
        None | Some(Yaml::Null) => Ok(false),
        Some(Yaml::Bool(b)) => Ok(*b),
        Some(Yaml::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(format!("must be a boolean (true or false), got {s:?}")),
        },
        Some(other) => Err(format!("must be a boolean (true or false), got {other:?}")),
    }
}

/// Parses `middleware: storage:`, naming the entry index in errors.
fn parse_middlewares(
    list: Option<&Yaml>,
    err: &dyn Fn(&str, String) -> CliError,
) -> CliResult<Vec<MiddlewareConfig>> {
    let items = match list {
        None | Some(Yaml::Null) => return Ok(Vec::new()),
        Some(Yaml::Sequence(items)) => items,
        Some(_) => {
            return Err(err(
                "middleware.storage",
                "must be a list of {name, options, disabled} entries".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = format!("middleware.storage[{i}]");
        let m: MiddlewareConfig =
            serde_yaml_ng::from_value(item.clone()).map_err(|e| err(&key, e.to_string()))?;
        if m.name.trim().is_empty() {
            return Err(err(&format!("{key}.name"), "is required".into()));
        }
        out.push(m);
    }
    Ok(out)
}

/// The data directory of the embedded default: `$REGSTORE_DATA_DIR`, else
/// `$XDG_DATA_HOME/regstore`, else `~/.local/share/regstore`.
pub fn data_dir(env: &Env) -> CliResult<PathBuf> {
    let nonempty = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    if let Some(d) = nonempty(DATA_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(d) = nonempty("XDG_DATA_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Ok(PathBuf::from(d).join("regstore"));
    }
    if let Some(home) = nonempty("HOME") {
        return Ok(PathBuf::from(home).join(".local/share/regstore"));
    }
    Err(CliError::Config {
        origin: "embedded default".into(),
        key: DATA_DIR_ENV.into(),
        message: "cannot determine a data directory (no HOME); set REGSTORE_DATA_DIR".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn key_of(e: CliError) -> String {
        match e {
            CliError::Config { key, .. } => key,
            other => panic!("expected a config error, got {other}"),
        }
    }

    const FULL: &str = "
version: 0.1
log: {level: info}
storage:
  s3:
    bucket: b
    region: us-east-1
    chunksize: 5242880
    secure: \"false\"
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging: {enabled: false}
  tag:
    concurrencylimit: 5
http:
  addr: :5000
middleware:
  registry: []
  storage:
    - name: cloudfront
      options:
        baseurl: https://d.cloudfront.net
        duration: 20m
    - name: redirect
      disabled: true
      options: {baseurl: https://x}
";

    #[test]
    fn parses_distribution_config() {
        let c = StorageConfig::from_yaml(FULL, "c.yml").unwrap();
        assert_eq!(c.backend, "s3");
        assert_eq!(
            c.params.string("s3", "bucket").unwrap().as_deref(),
            Some("b")
        );
        assert_eq!(
            c.params
                .int_in_range("s3", "chunksize", 0, 0, u64::MAX)
                .unwrap(),
            5242880
        );
        assert!(c.redirect_disabled);
        assert_eq!(c.middlewares.len(), 2);
        assert_eq!(c.middlewares[0].name, "cloudfront");
        assert_eq!(
            c.middlewares[0]
                .options
                .string("cloudfront", "duration")
                .unwrap()
                .as_deref(),
            Some("20m")
        );
        assert!(c.middlewares[1].disabled);
    }

    #[test]
    fn empty_backend_section_is_empty_parameters() {
        let c = StorageConfig::from_yaml("storage:\n  inmemory:\n", "c").unwrap();
        assert_eq!(c.backend, "inmemory");
        assert!(c.params.is_empty());
    }

    #[test]
    fn rejects_zero_or_two_backends_naming_storage() {
        let e = StorageConfig::from_yaml(
            "storage:\n  filesystem: {rootdirectory: /x}\n  s3: {bucket: b}\n",
            "c",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("filesystem, s3") && msg.contains("storage"),
            "{msg}"
        );
        assert_eq!(key_of(e), "storage");
        let e = StorageConfig::from_yaml("storage:\n  delete: {enabled: true}\n", "c").unwrap_err();
        assert_eq!(key_of(e), "storage");
        assert_eq!(
            key_of(StorageConfig::from_yaml("http: {}\n", "c").unwrap_err()),
            "storage"
        );
        assert_eq!(
            key_of(StorageConfig::from_yaml("", "c").unwrap_err()),
            "storage"
        );
    }

    #[test]
    fn rejects_malformed_sections() {
        let e = StorageConfig::from_yaml("storage:\n  s3: 5\n", "c").unwrap_err();
        assert_eq!(key_of(e), "storage.s3");
        let e = StorageConfig::from_yaml("storage: [a]\n", "c").unwrap_err();
        assert_eq!(key_of(e), "storage");
        let e = StorageConfig::from_yaml(
            "storage: {inmemory: }\nmiddleware: {storage: [{options: {}}]}\n",
            "c",
        )
        .unwrap_err();
        assert_eq!(key_of(e), "middleware.storage[0]");
        let e = StorageConfig::from_yaml("storage: {inmemory: }\nmiddleware: {storage: 3}\n", "c")
            .unwrap_err();
        assert_eq!(key_of(e), "middleware.storage");
        let e =
            StorageConfig::from_yaml("storage: {inmemory: , redirect: {disable: maybe}}\n", "c")
                .unwrap_err();
        assert_eq!(key_of(e), "storage.redirect.disable");
        let e = StorageConfig::from_yaml("storage: {a: [}\n", "c").unwrap_err();
        assert_eq!(key_of(e), "yaml");
    }

    #[test]
    fn env_overrides_parameters_and_backend() {
        let mut c = StorageConfig::from_yaml(FULL, "c").unwrap();
        c.apply_env(&env(&[
            ("REGISTRY_STORAGE_S3_BUCKET", "other"),
            (
                "REGISTRY_STORAGE_S3_REGIONENDPOINT",
                "http://127.0.0.1:9007",
            ),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "false"),
            ("REGISTRY_HTTP_ADDR", ":5001"),
        ]))
        .unwrap();
        assert_eq!(
            c.params.string("s3", "bucket").unwrap().as_deref(),
            Some("other")
        );
        assert_eq!(
            c.params.string("s3", "regionendpoint").unwrap().as_deref(),
            Some("http://127.0.0.1:9007")
        );

        let mut c = StorageConfig::from_yaml(FULL, "c").unwrap();
        c.apply_env(&env(&[
            ("REGISTRY_STORAGE", "filesystem"),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/srv"),
        ]))
        .unwrap();
        assert_eq!(c.backend, "filesystem");
        assert_eq!(c.params.keys().collect::<Vec<_>>(), ["rootdirectory"]);

        let mut c = StorageConfig::from_yaml(FULL, "c").unwrap();
        let e = c
            .apply_env(&env(&[(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
                "/srv",
            )]))
            .unwrap_err();
        assert_eq!(key_of(e), "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
    }

    #[test]
    fn data_dir_precedence() {
        assert_eq!(
            data_dir(&env(&[("REGSTORE_DATA_DIR", "/d"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/d")
        );
        assert_eq!(
            data_dir(&env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/regstore")
        );
        assert_eq!(
            data_dir(&env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.local/share/regstore")
        );
        assert!(data_dir(&env(&[])).is_err());
    }
}
