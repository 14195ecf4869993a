//! `secrets:` (rule 247): CI/CD variables whose values come from an
//! external secrets provider.

use serde::Serialize;

use super::check::{
    ErrorMark, attr_error, child, entry_bool, is_blank, opt_string, required_string,
};
use super::decode::Decoder;
use crate::ci::yaml::{Mapping, Node, Value};

const SECRET_KEYS: &[&str] = &[
    "vault",
    "file",
    "azure_key_vault",
    "gcp_secret_manager",
    "akeyless",
    "gitlab_secrets_manager",
    "token",
];
const PROVIDERS: &[&str] = &[
    "vault",
    "azure_key_vault",
    "gcp_secret_manager",
    "akeyless",
    "gitlab_secrets_manager",
];
const AKEYLESS_KEYS: &[&str] = &[
    "name",
    "data_key",
    "cert_user_name",
    "public_key_data",
    "csr_data",
    "uid_token",
    "gcp_audience",
    "azure_object_id",
    "k8s_service_account_token",
    "k8s_auth_config_name",
    "gateway_ca_certificate",
];

/// One entry of `secrets:`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretSpec {
    pub provider: SecretProvider,
    /// Store the value in a file and put its path in the variable (the
    /// default), rather than the value itself.
    pub file: bool,
    /// The `id_tokens` variable used to authenticate (`$VAULT_ID_TOKEN`).
    pub token: Option<String>,
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretProvider {
    /// HashiCorp Vault. The short form `path/field@engine` is expanded:
    /// the engine defaults to `kv-v2` at path `kv-v2`.
    Vault {
        engine_name: String,
        engine_path: String,
        path: String,
        field: String,
    },
    AzureKeyVault {
        name: String,
        version: Option<String>,
    },
    GcpSecretManager {
        name: String,
        version: Option<String>,
    },
    /// Akeyless options as written.
    Akeyless(Vec<(String, String)>),
    GitlabSecretsManager {
        name: String,
        source: Option<String>,
    },
}

/// Decodes `secrets:` at `path` (`jobs:deploy:secrets`), in the order
/// written.
pub(crate) fn decode_secrets(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<(String, SecretSpec)>> {
    let map = d.map(node, path)?;
    let mark = ErrorMark::new(d);
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map.iter() {
        let name = key
            .scalar_string()
            .map(|s| s.into_owned())
            .unwrap_or_default();
        if let Some(secret) = decode_secret(d, value, &child(path, &name)) {
            out.push((name, secret));
        }
    }
    mark.finish(d, out)
}

fn decode_secret(d: &mut Decoder, node: &Node, path: &str) -> Option<SecretSpec> {
    let mark = ErrorMark::new(d);
    let empty = Mapping::new();
    let map = match &node.value {
        Value::Map(map) => map,
        // A secret written without a value is an empty hash to GitLab.
        Value::Null => &empty,
        _ => {
            d.error(node, path, "config should be a hash");
            &empty
        }
    };
    d.unknown_keys(map, path, SECRET_KEYS);
    let providers: Vec<&str> = PROVIDERS
        .iter()
        .copied()
        .filter(|p| map.contains_key(p))
        .collect();
    if providers.len() != 1 {
        let message = format!(
            "config must use exactly one of these keys: {}",
            PROVIDERS.join(", ")
        );
        d.error(node, path, message);
    }
    let token = opt_string(d, map, path, "token");
    let gcp = map.get("gcp_secret_manager").is_some_and(|n| !is_blank(n));
    if gcp && token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        let at = map.get("token").unwrap_or(node);
        attr_error(d, at, path, "token", "is required with gcp secrets manager");
    }
    if !mark.clean(d) {
        return None;
    }
    let file = match map.get("file").filter(|n| !n.is_null()) {
        Some(f) => entry_bool(d, f, &child(path, "file")).unwrap_or(true),
        None => true,
    };
    let provider_key = providers.first().copied().unwrap_or("vault");
    let provider_node = map.get(provider_key).unwrap_or(node);
    let provider_path = child(path, provider_key);
    let provider = match provider_key {
        "vault" => decode_vault(d, provider_node, &provider_path),
        "azure_key_vault" => name_version(d, provider_node, &provider_path, false)
            .map(|(name, version)| SecretProvider::AzureKeyVault { name, version }),
        "gcp_secret_manager" => name_version(d, provider_node, &provider_path, true)
            .map(|(name, version)| SecretProvider::GcpSecretManager { name, version }),
        "akeyless" => decode_akeyless(d, provider_node, &provider_path),
        _ => decode_gitlab_secret(d, provider_node, &provider_path),
    };
    let provider = provider?;
    mark.finish(
        d,
        SecretSpec {
            provider,
            file,
            token,
        },
    )
}

fn decode_vault(d: &mut Decoder, node: &Node, path: &str) -> Option<SecretProvider> {
    match &node.value {
        Value::Str(text) => {
            if text.trim().is_empty() {
                d.error(node, path, "config can't be blank");
                return None;
            }
            // `path/to/secret/field@engine-path`, split at the last `@` and
            // then the last `/`.
            let (secret, engine) = match text.rsplit_once('@') {
                Some((secret, engine)) if !secret.is_empty() => (secret, engine),
                _ => (text.as_str(), "kv-v2"),
            };
            let (secret_path, field) = secret.rsplit_once('/').unwrap_or(("", secret));
            Some(SecretProvider::Vault {
                engine_name: "kv-v2".into(),
                engine_path: engine.into(),
                path: secret_path.into(),
                field: field.into(),
            })
        }
        Value::Map(map) => decode_vault_hash(d, node, map, path),
        _ => {
            d.error(node, path, "should be a hash or a string");
            None
        }
    }
}

fn decode_vault_hash(
    d: &mut Decoder,
    node: &Node,
    map: &Mapping,
    path: &str,
) -> Option<SecretProvider> {
    let mark = ErrorMark::new(d);
    d.unknown_keys(map, path, &["engine", "path", "field"]);
    let secret_path = required_string(d, node, map, path, "path");
    let field = required_string(d, node, map, path, "field");
    let engine = map.get("engine");
    match engine {
        Some(e) if !is_blank(e) => {
            if e.as_map().is_none() {
                attr_error(d, e, path, "engine", "should be a hash");
            }
        }
        found => {
            attr_error(d, found.unwrap_or(node), path, "engine", "can't be blank");
            if let Some(e) = found.filter(|e| !e.is_null() && e.as_map().is_none()) {
                attr_error(d, e, path, "engine", "should be a hash");
            }
        }
    }
    if !mark.clean(d) {
        return None;
    }
    let engine_node = engine?;
    let engine_map = engine_node.as_map()?;
    let engine_path = child(path, "engine");
    d.unknown_keys(engine_map, &engine_path, &["name", "path"]);
    let missing: Vec<&str> = ["name", "path"]
        .into_iter()
        .filter(|k| !engine_map.contains_key(k))
        .collect();
    if !missing.is_empty() {
        let message = format!("config missing required keys: {}", missing.join(", "));
        d.error(engine_node, &engine_path, message);
    }
    let engine_name = required_string(d, engine_node, engine_map, &engine_path, "name");
    let engine_at = required_string(d, engine_node, engine_map, &engine_path, "path");
    let vault = SecretProvider::Vault {
        engine_name: engine_name.unwrap_or_default(),
        engine_path: engine_at.unwrap_or_default(),
        path: secret_path.unwrap_or_default(),
        field: field.unwrap_or_default(),
    };
    mark.finish(d, vault)
}

/// Azure Key Vault and GCP Secret Manager: a `name` and an optional
/// `version` (GCP versions may be numbers).
fn name_version(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    numeric_version: bool,
) -> Option<(String, Option<String>)> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, &["name", "version"]);
    let name = required_string(d, node, map, path, "name");
    let version = match map.get("version").filter(|n| !n.is_null()) {
        Some(v) if v.as_str().is_some() || (numeric_version && v.as_int().is_some()) => {
            v.scalar_string().map(|s| s.into_owned())
        }
        Some(v) => {
            attr_error(d, v, path, "version", "should be a string");
            None
        }
        None => None,
    };
    mark.finish(d, (name.unwrap_or_default(), version))
}

fn decode_akeyless(d: &mut Decoder, node: &Node, path: &str) -> Option<SecretProvider> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, AKEYLESS_KEYS);
    let mut options = Vec::new();
    for key in AKEYLESS_KEYS {
        if let Some(value) = opt_string(d, map, path, key) {
            options.push(((*key).to_string(), value));
        }
    }
    mark.finish(d, SecretProvider::Akeyless(options))
}

fn decode_gitlab_secret(d: &mut Decoder, node: &Node, path: &str) -> Option<SecretProvider> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, &["name", "source"]);
    let name = required_string(d, node, map, path, "name");
    let source = opt_string(d, map, path, "source");
    if let (Some(text), Some(at)) = (&source, map.get("source")) {
        let group = text.strip_prefix("group/").is_some_and(|g| {
            !g.is_empty()
                && g.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        });
        if text != "project" && !group {
            attr_error(
                d,
                at,
                path,
                "source",
                "must follow the format group/group_full_path or 'project'",
            );
        }
    }
    let secret = SecretProvider::GitlabSecretsManager {
        name: name.unwrap_or_default(),
        source,
    };
    mark.finish(d, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<Vec<(String, SecretSpec)>>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::new();
        let out = decode_secrets(&mut d, &node, "jobs:x:secrets");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn one(text: &str) -> SecretSpec {
        let (out, errs) = decode(text);
        assert!(errs.is_empty(), "{errs:?}");
        out.unwrap().remove(0).1
    }

    #[test]
    fn rule_247_vault_long_form() {
        let secret = one(
            "DB:\n  vault:\n    engine: {name: kv-v2, path: ops}\n    path: production/db\n    field: password\n",
        );
        assert_eq!(
            secret.provider,
            SecretProvider::Vault {
                engine_name: "kv-v2".into(),
                engine_path: "ops".into(),
                path: "production/db".into(),
                field: "password".into()
            }
        );
        assert!(secret.file);
    }

    #[test]
    fn rule_247_vault_short_form_with_and_without_engine() {
        let with_engine =
            one("DB: {vault: production/db/password@ops, file: false, token: $VAULT_TOKEN}\n");
        assert_eq!(
            with_engine.provider,
            SecretProvider::Vault {
                engine_name: "kv-v2".into(),
                engine_path: "ops".into(),
                path: "production/db".into(),
                field: "password".into()
            }
        );
        assert!(!with_engine.file);
        assert_eq!(with_engine.token.as_deref(), Some("$VAULT_TOKEN"));
        let default_engine = one("DB: {vault: production/db/password}\n");
        assert!(matches!(
            default_engine.provider,
            SecretProvider::Vault { ref engine_path, .. } if engine_path == "kv-v2"
        ));
    }

    #[test]
    fn rule_247_cloud_providers() {
        let gcp = one("P: {gcp_secret_manager: {name: test, version: 2}, token: $GCP_TOKEN}\n");
        assert_eq!(
            gcp.provider,
            SecretProvider::GcpSecretManager {
                name: "test".into(),
                version: Some("2".into())
            }
        );
        let azure = one("P: {azure_key_vault: {name: test, version: v1}}\n");
        assert!(matches!(
            azure.provider,
            SecretProvider::AzureKeyVault { .. }
        ));
        assert_eq!(
            decode("P: {gcp_secret_manager: {name: test}}\n").1,
            ["jobs:x:secrets:P token is required with gcp secrets manager"]
        );
    }

    #[test]
    fn rule_247_exactly_one_provider() {
        assert_eq!(
            decode("P: {token: $T}\n").1,
            [
                "jobs:x:secrets:P config must use exactly one of these keys: vault, azure_key_vault, gcp_secret_manager, akeyless, gitlab_secrets_manager"
            ]
        );
        assert_eq!(
            decode("P: {vault: a/b, extra: 1}\n").1,
            ["jobs:x:secrets:P config contains unknown keys: extra"]
        );
    }

    #[test]
    fn rule_247_vault_hash_needs_path_field_and_engine() {
        assert_eq!(
            decode("P: {vault: {path: gitlab}}\n").1,
            [
                "jobs:x:secrets:P:vault field can't be blank",
                "jobs:x:secrets:P:vault engine can't be blank"
            ]
        );
        assert_eq!(
            decode("P: {vault: {path: a, field: b, engine: {name: kv-v2}}}\n").1,
            [
                "jobs:x:secrets:P:vault:engine config missing required keys: path",
                "jobs:x:secrets:P:vault:engine path can't be blank"
            ]
        );
        assert_eq!(
            decode("P: {vault: 1}\n").1,
            ["jobs:x:secrets:P:vault should be a hash or a string"]
        );
    }

    #[test]
    fn rule_247_file_must_be_a_boolean() {
        assert_eq!(
            decode("P: {vault: a/b, file: 'no'}\n").1,
            ["jobs:x:secrets:P:file config should be a boolean value"]
        );
    }
}
