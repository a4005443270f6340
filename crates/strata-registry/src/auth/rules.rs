//! Access rules: who may pull, push or delete in which repositories.
//!
//! Rules add up: a client may do what any matching rule grants. A rule matches a client by
//! user name, by a group the user is in, by `*` (any authenticated user), or by
//! `anonymous = true` (everyone, with or without credentials). With no rules at all, every
//! authenticated user may do everything and anonymous clients nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{AccessRule, Action};
use crate::names::glob_matches;

pub(crate) struct Rules {
    rules: Vec<AccessRule>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Rules {
    pub(crate) fn new(rules: &[AccessRule], groups: &BTreeMap<String, Vec<String>>) -> Rules {
        let rules = if rules.is_empty() {
            vec![AccessRule {
                repositories: vec!["**".into()],
                users: vec!["*".into()],
                groups: vec![],
                anonymous: false,
                actions: vec![Action::Pull, Action::Push, Action::Delete],
            }]
        } else {
            rules.to_vec()
        };
        Rules {
            rules,
            groups: groups.clone(),
        }
    }

    fn applies(&self, rule: &AccessRule, user: Option<&str>) -> bool {
        if rule.anonymous {
            return true;
        }
        let Some(user) = user else {
            return false;
        };
        rule.users.iter().any(|u| u == "*" || u == user)
            || rule.groups.iter().any(|g| {
                self.groups
                    .get(g)
                    .is_some_and(|members| members.iter().any(|m| m == user))
            })
    }

    /// What `user` (`None`: anonymous) may do in `repository`.
    pub(crate) fn actions(&self, user: Option<&str>, repository: &str) -> BTreeSet<Action> {
        let mut out = BTreeSet::new();
        for rule in &self.rules {
            if self.applies(rule, user)
                && rule
                    .repositories
                    .iter()
                    .any(|g| glob_matches(g, repository))
            {
                out.extend(rule.actions.iter().copied());
            }
        }
        out
    }

    pub(crate) fn allows(&self, user: Option<&str>, repository: &str, action: Action) -> bool {
        self.actions(user, repository).contains(&action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        repos: &[&str],
        users: &[&str],
        groups: &[&str],
        anon: bool,
        actions: &[Action],
    ) -> AccessRule {
        AccessRule {
            repositories: repos.iter().map(|s| s.to_string()).collect(),
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            anonymous: anon,
            actions: actions.to_vec(),
        }
    }

    #[test]
    fn default_rules_need_a_user() {
        let r = Rules::new(&[], &BTreeMap::new());
        assert!(r.allows(Some("x"), "a/b", Action::Delete));
        assert!(!r.allows(None, "a/b", Action::Pull));
    }

    #[test]
    fn rules_add_up() {
        use Action::*;
        let mut groups = BTreeMap::new();
        groups.insert("devs".to_string(), vec!["alice".to_string()]);
        let r = Rules::new(
            &[
                rule(&["public/**"], &[], &[], true, &[Pull]),
                rule(&["team/*"], &[], &["devs"], false, &[Pull, Push]),
                rule(&["team/*"], &["bob"], &[], false, &[Pull]),
                rule(&["**"], &["admin"], &[], false, &[Pull, Push, Delete]),
            ],
            &groups,
        );
        assert!(r.allows(None, "public/x", Pull));
        assert!(!r.allows(None, "public/x", Push));
        assert!(!r.allows(None, "team/app", Pull));
        assert!(r.allows(Some("alice"), "team/app", Push));
        assert!(!r.allows(Some("alice"), "team/app", Delete));
        assert!(r.allows(Some("bob"), "team/app", Pull));
        assert!(!r.allows(Some("bob"), "team/app", Push));
        assert!(r.allows(Some("bob"), "public/x", Pull));
        assert!(!r.allows(Some("alice"), "team/app/nested", Pull));
        assert!(r.allows(Some("admin"), "anything/at/all", Delete));
    }
}
