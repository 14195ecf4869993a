//! `image:` and `services:` (rules 227-229): the container a job runs in
//! and the containers started next to it.

use serde::Serialize;

use super::check::{ErrorMark, attr_error, child, is_blank, strings, variables};
use super::decode::Decoder;
use crate::ci::yaml::{Mapping, Node, Value};

/// Keys `image:` and each service share. `ports` is only allowed in Web IDE
/// terminal configurations, never in a pipeline.
const IMAGEABLE_KEYS: &[&str] = &[
    "docker",
    "kubernetes",
    "name",
    "entrypoint",
    "ports",
    "pull_policy",
];
const SERVICE_KEYS: &[&str] = &["command", "alias", "variables"];
const PULL_POLICIES: &[&str] = &["always", "never", "if-not-present"];

/// A job's `image:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageSpec {
    /// `name`, `name:tag` or `name@digest`, variables unexpanded.
    pub name: String,
    /// Replaces the image's entrypoint; `[""]` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// `always`, `if-not-present` and/or `never`; empty means the runner's.
    pub pull_policy: Vec<String>,
    /// `docker:platform`, as for `docker pull --platform`.
    pub docker_platform: Option<String>,
    /// `docker:user`, as for `docker run --user`.
    pub docker_user: Option<String>,
    /// `kubernetes:user` (`UID` or `UID:GID`).
    pub kubernetes_user: Option<String>,
}

/// One entry of `services:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceSpec {
    pub name: String,
    /// `alias` as written.
    pub alias: Option<String>,
    /// The host names the service is reachable at: the runner splits
    /// `alias` on commas and spaces.
    pub aliases: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// The service's own variables, values as Ruby's `to_s` prints them.
    pub variables: Vec<(String, String)>,
    pub pull_policy: Vec<String>,
    pub docker_platform: Option<String>,
    pub docker_user: Option<String>,
    pub kubernetes_user: Option<String>,
}

/// Decodes `image:` at `path` (`jobs:build:image`).
pub(crate) fn decode_image(d: &mut Decoder, node: &Node, path: &str) -> Option<ImageSpec> {
    let mark = ErrorMark::new(d);
    let map = imageable(d, node, path, &[])?;
    if !mark.clean(d) {
        return None;
    }
    let mut image = common_fields(node, map);
    if let Some(map) = map {
        if let Some(policy) = map.get("pull_policy").filter(|n| !n.is_null()) {
            image.pull_policy =
                decode_pull_policy(d, policy, &child(path, "pull_policy")).unwrap_or_default();
        }
    }
    mark.finish(d, image)
}

/// Decodes `services:` at `path` (`jobs:build:services`). Each service's
/// errors are reported under `<path>:service`, as GitLab does.
pub(crate) fn decode_services(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<ServiceSpec>> {
    let Some(items) = node.as_seq() else {
        // GitLab prints the class name: "should be a array".
        d.error(node, path, "config should be a array");
        return None;
    };
    let mut flat = Vec::new();
    flatten(items, &mut flat);
    let mark = ErrorMark::new(d);
    let item_path = child(path, "service");
    let services: Vec<ServiceSpec> = flat
        .into_iter()
        .filter_map(|item| decode_service(d, item, &item_path))
        .collect();
    mark.finish(d, services)
}

fn flatten<'n>(items: &'n [Node], out: &mut Vec<&'n Node>) {
    for item in items {
        match item.as_seq() {
            Some(inner) => flatten(inner, out),
            None => out.push(item),
        }
    }
}

fn decode_service(d: &mut Decoder, node: &Node, path: &str) -> Option<ServiceSpec> {
    let mark = ErrorMark::new(d);
    let map = imageable(d, node, path, SERVICE_KEYS)?;
    let mut command = None;
    let mut alias = None;
    if let Some(map) = map {
        if let Some(value) = map.get("command").filter(|n| !n.is_null()) {
            command = strings(value);
            if command.is_none() {
                attr_error(d, value, path, "command", "should be an array of strings");
            }
        }
        if let Some(value) = map.get("alias").filter(|n| !n.is_null()) {
            alias = value.as_str().map(String::from);
            if alias.is_none() {
                attr_error(d, value, path, "alias", "should be a string");
            }
        }
    }
    if !mark.clean(d) {
        return None;
    }
    let image = common_fields(node, map);
    let mut service = ServiceSpec {
        name: image.name,
        aliases: alias.as_deref().map(split_aliases).unwrap_or_default(),
        alias,
        entrypoint: image.entrypoint,
        command,
        docker_platform: image.docker_platform,
        docker_user: image.docker_user,
        kubernetes_user: image.kubernetes_user,
        ..ServiceSpec::default()
    };
    if let Some(map) = map {
        if let Some(policy) = map.get("pull_policy").filter(|n| !n.is_null()) {
            service.pull_policy =
                decode_pull_policy(d, policy, &child(path, "pull_policy")).unwrap_or_default();
        }
        if let Some(vars) = map.get("variables").filter(|n| !n.is_null()) {
            service.variables = variables(d, vars, &child(path, "variables")).unwrap_or_default();
        }
    }
    mark.finish(d, service)
}

/// The runner accepts several host names in one `alias`, separated by
/// commas or spaces.
fn split_aliases(alias: &str) -> Vec<String> {
    alias
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// Checks what `image:` and a service have in common; returns the hash
/// when the value is one (`Some(None)` for the string form).
fn imageable<'n>(
    d: &mut Decoder,
    node: &'n Node,
    path: &str,
    extra_keys: &[&str],
) -> Option<Option<&'n Mapping>> {
    let map = match &node.value {
        Value::Str(name) => {
            if name.chars().all(char::is_whitespace) {
                attr_error(d, node, path, "name", "can't be blank");
            }
            return Some(None);
        }
        Value::Map(map) => map,
        _ => {
            d.error(node, path, "config should be a hash or a string");
            return None;
        }
    };
    let allowed: Vec<&str> = IMAGEABLE_KEYS.iter().chain(extra_keys).copied().collect();
    d.unknown_keys(map, path, &allowed);
    if map.contains_key("ports") {
        d.error(node, path, "config contains disallowed keys: ports");
    }
    match map.get("name") {
        Some(name) if !is_blank(name) => {
            if name.as_str().is_none() {
                attr_error(d, name, path, "name", "should be a string");
            }
        }
        found => {
            attr_error(d, found.unwrap_or(node), path, "name", "can't be blank");
            if let Some(name) = found.filter(|n| !n.is_null() && n.as_str().is_none()) {
                attr_error(d, name, path, "name", "should be a string");
            }
        }
    }
    if let Some(entrypoint) = map.get("entrypoint").filter(|n| !n.is_null()) {
        if strings(entrypoint).is_none() {
            attr_error(
                d,
                entrypoint,
                path,
                "entrypoint",
                "should be an array of strings",
            );
        }
    }
    check_executor_opts(d, map, path);
    Some(Some(map))
}

/// Reads the fields of an already checked image or service.
fn common_fields(node: &Node, map: Option<&Mapping>) -> ImageSpec {
    let Some(map) = map else {
        return ImageSpec {
            name: node.as_str().unwrap_or_default().to_string(),
            ..ImageSpec::default()
        };
    };
    let text = |opts: &str, key: &str| {
        map.get(opts)
            .and_then(|o| o.as_map())
            .and_then(|o| o.get(key))
            .and_then(|v| v.scalar_string())
            .map(|s| s.into_owned())
    };
    ImageSpec {
        name: map
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string(),
        entrypoint: map.get("entrypoint").and_then(strings),
        pull_policy: Vec::new(),
        docker_platform: text("docker", "platform"),
        docker_user: text("docker", "user"),
        kubernetes_user: text("kubernetes", "user"),
    }
}

/// `docker:` and `kubernetes:` are checked against GitLab's JSON schema;
/// messages follow the schema validator's wording.
fn check_executor_opts(d: &mut Decoder, map: &Mapping, path: &str) {
    for (executor, properties) in [
        ("docker", &["platform", "user"][..]),
        ("kubernetes", &["user"][..]),
    ] {
        let Some(opts) = map.get(executor).filter(|n| !n.is_null()) else {
            continue;
        };
        let Some(opts_map) = opts.as_map() else {
            let message = format!("executor opts value at `/{executor}` is not an object");
            d.error(opts, path, message);
            continue;
        };
        for (key, value) in opts_map.iter() {
            let name = key
                .scalar_string()
                .map(|s| s.into_owned())
                .unwrap_or_default();
            let pointer = format!("/{executor}/{name}");
            if !properties.contains(&name.as_str()) {
                let message = format!(
                    "executor opts object property at `{pointer}` is a disallowed additional property"
                );
                d.error(key, path, message);
                continue;
            }
            check_option_value(d, value, path, executor, &name, &pointer);
        }
    }
}

fn check_option_value(
    d: &mut Decoder,
    value: &Node,
    path: &str,
    executor: &str,
    name: &str,
    pointer: &str,
) {
    let kubernetes_uid = executor == "kubernetes" && value.as_int().is_some();
    let Some(text) = value.as_str() else {
        if !kubernetes_uid {
            d.error(
                value,
                path,
                format!("executor opts value at `{pointer}` is not a string"),
            );
        }
        return;
    };
    let max = if name == "platform" { 64 } else { 255 };
    let len = text.chars().count();
    if len < 1 {
        d.error(
            value,
            path,
            format!("executor opts string length at `{pointer}` is less than: 1"),
        );
    } else if len > max {
        let message = format!("executor opts string length at `{pointer}` is greater than: {max}");
        d.error(value, path, message);
    }
}

/// `pull_policy`: one policy or a non-empty list of them.
fn decode_pull_policy(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<String>> {
    let mark = ErrorMark::new(d);
    let list = match &node.value {
        Value::Str(s) => {
            if !PULL_POLICIES.contains(&s.as_str()) {
                d.error(node, path, "config is not included in the list");
            }
            vec![s.clone()]
        }
        Value::Seq(items) => {
            if items.iter().any(|i| i.as_str().is_none()) {
                d.error(
                    node,
                    path,
                    "config should be an array of strings or a string",
                );
            }
            let unknown: Vec<String> = items
                .iter()
                .filter(|i| !i.as_str().is_some_and(|s| PULL_POLICIES.contains(&s)))
                .filter_map(|i| i.scalar_string().map(|s| s.into_owned()))
                .collect();
            if !unknown.is_empty() {
                d.error(
                    node,
                    path,
                    format!("config contains unknown values: {}", unknown.join(", ")),
                );
            }
            if items.is_empty() {
                d.error(node, path, "config can't be blank");
            }
            strings(node).unwrap_or_default()
        }
        _ => {
            d.error(
                node,
                path,
                "config should be an array of strings or a string",
            );
            Vec::new()
        }
    };
    mark.finish(d, list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn image(text: &str) -> (Option<ImageSpec>, Vec<String>) {
        let mut d = Decoder::new();
        let out = decode_image(&mut d, &doc(text), "jobs:build:image");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn services(text: &str) -> (Option<Vec<ServiceSpec>>, Vec<String>) {
        let mut d = Decoder::new();
        let out = decode_services(&mut d, &doc(text), "jobs:build:services");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    #[test]
    fn rule_227_image_is_a_string_or_a_hash() {
        assert_eq!(image("ruby:3.3").0.unwrap().name, "ruby:3.3");
        let (spec, errs) = image(
            "name: super/sql:experimental\nentrypoint: ['']\ndocker: {platform: arm64/v8, user: dave}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(spec.entrypoint, Some(vec![String::new()]));
        assert_eq!(spec.docker_platform.as_deref(), Some("arm64/v8"));
        assert_eq!(spec.docker_user.as_deref(), Some("dave"));
        assert_eq!(
            image("[ruby]").1,
            ["jobs:build:image config should be a hash or a string"]
        );
    }

    #[test]
    fn rule_227_image_hash_needs_a_name_and_known_keys() {
        assert_eq!(
            image("entrypoint: [sh]\n").1,
            ["jobs:build:image name can't be blank"]
        );
        assert_eq!(
            image("name: a\ntag: b\n").1,
            ["jobs:build:image config contains unknown keys: tag"]
        );
        assert_eq!(
            image("name: a\nports: [80]\n").1,
            ["jobs:build:image config contains disallowed keys: ports"]
        );
        assert_eq!(
            image("name: a\nentrypoint: sh\n").1,
            ["jobs:build:image entrypoint should be an array of strings"]
        );
    }

    #[test]
    fn rule_227_docker_options_follow_the_schema() {
        assert_eq!(
            image("name: a\ndocker: {arch: x}\n").1,
            [
                "jobs:build:image executor opts object property at `/docker/arch` is a disallowed additional property"
            ]
        );
        assert_eq!(
            image("name: a\ndocker: {platform: 1}\n").1,
            ["jobs:build:image executor opts value at `/docker/platform` is not a string"]
        );
        let (spec, errs) = image("name: a\nkubernetes: {user: '1001:1001'}\n");
        assert!(errs.is_empty());
        assert_eq!(spec.unwrap().kubernetes_user.as_deref(), Some("1001:1001"));
    }

    #[test]
    fn rule_228_pull_policy_is_one_or_a_list_of_known_policies() {
        assert_eq!(
            image("name: a\npull_policy: if-not-present\n")
                .0
                .unwrap()
                .pull_policy,
            ["if-not-present"]
        );
        assert_eq!(
            image("name: a\npull_policy: [always, if-not-present]\n")
                .0
                .unwrap()
                .pull_policy,
            ["always", "if-not-present"]
        );
        assert_eq!(
            image("name: a\npull_policy: sometimes\n").1,
            ["jobs:build:image:pull_policy config is not included in the list"]
        );
        assert_eq!(
            image("name: a\npull_policy: [always, sometimes]\n").1,
            ["jobs:build:image:pull_policy config contains unknown values: sometimes"]
        );
        assert_eq!(
            image("name: a\npull_policy: []\n").1,
            ["jobs:build:image:pull_policy config can't be blank"]
        );
    }

    #[test]
    fn rule_229_services_are_strings_or_hashes() {
        let (list, errs) = services(
            "- postgres:16\n- name: my-postgres:11.7\n  alias: db,postgres\n  entrypoint: [/usr/local/bin/db-postgres]\n  command: [start]\n  variables: {POSTGRES_DB: app, PORT: 5432}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let list = list.unwrap();
        assert_eq!(list[0].name, "postgres:16");
        assert_eq!(list[1].aliases, ["db", "postgres"]);
        assert_eq!(list[1].command, Some(vec!["start".to_string()]));
        assert_eq!(
            list[1].variables,
            [
                ("POSTGRES_DB".into(), "app".into()),
                ("PORT".into(), "5432".into())
            ]
        );
    }

    #[test]
    fn rule_229_service_errors_are_reported_under_service() {
        assert_eq!(
            services("postgres").1,
            ["jobs:build:services config should be a array"]
        );
        assert_eq!(
            services("- [1]\n").1,
            ["jobs:build:services:service config should be a hash or a string"]
        );
        assert_eq!(
            services("- name: a\n  alias: [b]\n").1,
            ["jobs:build:services:service alias should be a string"]
        );
        assert_eq!(
            services("- name: a\n  command: run\n").1,
            ["jobs:build:services:service command should be an array of strings"]
        );
        assert_eq!(
            services("- name: a\n  volumes: [x]\n").1,
            ["jobs:build:services:service config contains unknown keys: volumes"]
        );
    }
}
