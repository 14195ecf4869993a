//! Which ref a local pipeline runs for, and the project's default branch.
//!
//! The commit is always HEAD: the work tree is what runs. The ref only
//! decides the pipeline type (branch or tag, rule 200) and the ref
//! variables. It comes from, in order:
//! 1. `--ref REF`: `refs/heads/X` and `refs/tags/X` are taken as written;
//!    a bare name is a tag if a tag of that name exists, else a branch.
//! 2. The branch HEAD is on.
//! 3. A detached HEAD: a tag pointing at HEAD (the first by name) makes a
//!    tag pipeline, as checking out a tag and pushing it would; else a
//!    branch whose tip is HEAD (the default branch if it is one of them);
//!    else there is no ref to speak of, and the pipeline is taken as a
//!    branch pipeline named after HEAD's SHA, flagged `detached` so that a
//!    front end can suggest `--ref`.

use super::git::GitFacts;

/// Whether a pipeline runs for a branch or a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
}

/// The ref a pipeline runs for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineRef {
    /// The short name: `main`, `feature/x`, `v1.0`.
    pub name: String,
    pub kind: RefKind,
    /// HEAD is detached and nothing points at it: `name` is HEAD's SHA.
    pub detached: bool,
}

impl PipelineRef {
    fn branch(name: &str) -> PipelineRef {
        PipelineRef {
            name: name.to_owned(),
            kind: RefKind::Branch,
            detached: false,
        }
    }

    fn tag(name: &str) -> PipelineRef {
        PipelineRef {
            name: name.to_owned(),
            kind: RefKind::Tag,
            detached: false,
        }
    }
}

/// The ref of the pipeline, from `--ref` or from HEAD (see the module
/// documentation).
pub fn resolve_ref(facts: &GitFacts, ref_override: Option<&str>) -> PipelineRef {
    if let Some(r) = ref_override {
        if let Some(tag) = r.strip_prefix("refs/tags/") {
            return PipelineRef::tag(tag);
        }
        if let Some(branch) = r.strip_prefix("refs/heads/") {
            return PipelineRef::branch(branch);
        }
        return if facts.tags.contains(r) {
            PipelineRef::tag(r)
        } else {
            PipelineRef::branch(r)
        };
    }
    if let Some(branch) = &facts.branch {
        return PipelineRef::branch(branch);
    }
    if let Some(tag) = facts.tags_at_head.first() {
        return PipelineRef::tag(&tag.name);
    }
    let default = default_branch(facts);
    if let Some(branch) = facts
        .branches_at_head
        .iter()
        .find(|b| **b == default)
        .or_else(|| facts.branches_at_head.first())
    {
        return PipelineRef::branch(branch);
    }
    PipelineRef {
        name: facts.head.sha.clone(),
        kind: RefKind::Branch,
        detached: true,
    }
}

/// `CI_DEFAULT_BRANCH`: the branch `origin/HEAD` points at; else `main` or
/// `master`, whichever exists locally (`main` first); else the current
/// branch; else `main`.
pub fn default_branch(facts: &GitFacts) -> String {
    if let Some(b) = &facts.origin_head {
        return b.clone();
    }
    for candidate in ["main", "master"] {
        if facts.branches.contains(candidate) {
            return candidate.to_owned();
        }
    }
    facts.branch.clone().unwrap_or_else(|| "main".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::git::tests::Repo;
    use super::*;

    #[test]
    fn rule_200_branch_checkout_is_a_branch_pipeline() {
        let repo = Repo::new();
        repo.commit("a", "one");
        repo.git(&["checkout", "-q", "-b", "feature/x"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(resolve_ref(&facts, None), PipelineRef::branch("feature/x"));
        assert_eq!(default_branch(&facts), "main");
    }

    #[test]
    fn rule_200_ref_override_naming_a_tag_is_a_tag_pipeline() {
        let repo = Repo::new();
        repo.commit("a", "one");
        repo.git(&["tag", "v1"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(resolve_ref(&facts, Some("v1")), PipelineRef::tag("v1"));
        assert_eq!(
            resolve_ref(&facts, Some("other")),
            PipelineRef::branch("other")
        );
        assert_eq!(
            resolve_ref(&facts, Some("refs/heads/v1")),
            PipelineRef::branch("v1")
        );
        assert_eq!(
            resolve_ref(&facts, Some("refs/tags/new")),
            PipelineRef::tag("new")
        );
    }

    #[test]
    fn detached_head_prefers_a_tag_then_a_branch_then_the_sha() {
        let repo = Repo::new();
        repo.commit("a", "one");
        repo.git(&["tag", "-a", "v2", "-m", "two"]);
        repo.git(&["checkout", "-q", "--detach"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(resolve_ref(&facts, None), PipelineRef::tag("v2"));

        repo.git(&["tag", "-d", "v2"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(resolve_ref(&facts, None), PipelineRef::branch("main"));

        let sha = repo.commit("b", "two");
        let facts = GitFacts::read(repo.path()).expect("read");
        let r = resolve_ref(&facts, None);
        assert_eq!(
            (r.name.as_str(), r.kind, r.detached),
            (sha.as_str(), RefKind::Branch, true)
        );
    }

    #[test]
    fn default_branch_falls_back_to_master_then_current() {
        let repo = Repo::new();
        repo.commit("a", "one");
        repo.git(&["branch", "-m", "master"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(default_branch(&facts), "master");
        repo.git(&["branch", "-m", "trunk"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(default_branch(&facts), "trunk");
    }
}
