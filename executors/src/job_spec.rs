//! What a job asks of container-based executors: the image it runs in and
//! the services beside it (GitLab's `image:` and `services:`).
//!
//! The shell executor ignores all of this, as GitLab's does.

/// An image to run containers from, with GitLab's `image:` options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImageSpec {
    /// The image reference, e.g. `alpine:3.20` or
    /// `registry.example.com/tools/build@sha256:...`.
    pub name: String,
    /// Replaces the image's `ENTRYPOINT`: `None` keeps the image's own,
    /// `Some(vec![""])` clears it (GitLab's `entrypoint: [""]`).
    pub entrypoint: Option<Vec<String>>,
    /// The job's `pull_policy` list (`always`, `if-not-present`,
    /// `never`), tried in order; empty for the executor's default.
    pub pull_policy: Vec<String>,
}

impl ImageSpec {
    /// An image with no entrypoint override and the default pull policy.
    pub fn new(name: impl Into<String>) -> Self {
        ImageSpec {
            name: name.into(),
            ..ImageSpec::default()
        }
    }

    /// Replaces the image's entrypoint (`[""]` clears it).
    pub fn with_entrypoint<S: Into<String>>(
        mut self,
        entrypoint: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the pull policies to try, in order.
    pub fn with_pull_policy<S: Into<String>>(
        mut self,
        policies: impl IntoIterator<Item = S>,
    ) -> Self {
        self.pull_policy = policies.into_iter().map(Into::into).collect();
        self
    }
}

/// A service container started beside the job (GitLab's `services:`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// The image reference; the service's default host names derive from
    /// it (see the Docker executor).
    pub name: String,
    /// Extra host names. Each entry may itself hold several names
    /// separated by spaces or commas, as GitLab's `alias:` may.
    pub aliases: Vec<String>,
    /// Replaces the image's `ENTRYPOINT` (`[""]` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's `CMD`.
    pub command: Option<Vec<String>>,
    /// The service's own variables; they win over the job's.
    pub variables: Vec<(String, String)>,
    /// Pull policies, as for [`ImageSpec::pull_policy`].
    pub pull_policy: Vec<String>,
    /// TCP ports to wait for besides those the image exposes
    /// (GitLab's `ports:`).
    pub ports: Vec<u16>,
}

impl ServiceSpec {
    /// A service from `name` with the image's own entrypoint and command.
    pub fn new(name: impl Into<String>) -> Self {
        ServiceSpec {
            name: name.into(),
            ..ServiceSpec::default()
        }
    }

    /// Adds host names (space or comma separated).
    pub fn with_alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// Replaces the image's entrypoint (`[""]` clears it).
    pub fn with_entrypoint<S: Into<String>>(
        mut self,
        entrypoint: impl IntoIterator<Item = S>,
    ) -> Self {
        self.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the image's command.
    pub fn with_command<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>) -> Self {
        self.command = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a variable of the service.
    pub fn with_variable(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((key.into(), value.into()));
        self
    }

    /// Sets the pull policies to try, in order.
    pub fn with_pull_policy<S: Into<String>>(
        mut self,
        policies: impl IntoIterator<Item = S>,
    ) -> Self {
        self.pull_policy = policies.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a TCP port to wait for.
    pub fn with_port(mut self, port: u16) -> Self {
        self.ports.push(port);
        self
    }

    /// Every alias, split on spaces and commas, empty ones dropped.
    pub fn alias_names(&self) -> impl Iterator<Item = &str> {
        self.aliases
            .iter()
            .flat_map(|a| a.split([' ', ',']))
            .filter(|a| !a.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_split_on_spaces_and_commas() {
        let s = ServiceSpec::new("postgres:16")
            .with_alias("db, pg")
            .with_alias("database");
        assert_eq!(
            s.alias_names().collect::<Vec<_>>(),
            ["db", "pg", "database"]
        );
    }

    #[test]
    fn builders_set_fields() {
        let i = ImageSpec::new("alpine")
            .with_entrypoint([""])
            .with_pull_policy(["never"]);
        assert_eq!(i.entrypoint, Some(vec![String::new()]));
        assert_eq!(i.pull_policy, ["never"]);
        let s = ServiceSpec::new("redis")
            .with_command(["redis-server"])
            .with_variable("A", "1")
            .with_port(6379);
        assert_eq!(s.command, Some(vec!["redis-server".to_owned()]));
        assert_eq!(s.variables, [("A".to_owned(), "1".to_owned())]);
        assert_eq!(s.ports, [6379]);
    }
}
