//! Findings about one replica each (a stale tag, a dangling image, a container still
//! pulling) are grouped: ten replicas on the same stale tag are one finding with a count
//! that names them, not ten lines saying the same thing. Replicas group when the code, the
//! environment and what is said about them are the same.

use std::collections::BTreeMap;

use crate::model::{Code, Finding};

/// Replicas named in a grouped message; the count says how many there are in all.
const NAMED: usize = 5;

/// One replica's finding: `what` is said about `name` (`api-1`), `instance` is its key.
pub struct PerReplica {
    pub code: Code,
    pub environment: String,
    pub name: String,
    pub instance: String,
    pub what: String,
    pub hint: &'static str,
}

/// One finding per (code, environment, what), in the order first seen.
pub fn group(items: Vec<PerReplica>) -> Vec<Finding> {
    let mut groups: BTreeMap<(usize, Code, String, String), Vec<PerReplica>> = BTreeMap::new();
    let mut first: BTreeMap<(Code, String, String), usize> = BTreeMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let id = (item.code, item.environment.clone(), item.what.clone());
        let order = *first.entry(id.clone()).or_insert(i);
        groups.entry((order, id.0, id.1, id.2)).or_default().push(item);
    }
    groups.into_values().map(finding).collect()
}

fn finding(mut replicas: Vec<PerReplica>) -> Finding {
    replicas.sort_by(|a, b| a.name.cmp(&b.name));
    let one = &replicas[0];
    let who = match replicas.len() {
        1 => one.name.clone(),
        n => {
            let mut names: Vec<&str> = replicas.iter().take(NAMED).map(|r| r.name.as_str()).collect();
            if n > NAMED {
                names.push("…");
            }
            format!("{n} replicas ({})", names.join(", "))
        }
    };
    let key = replicas.iter().map(|r| r.instance.as_str()).collect::<Vec<_>>().join(",");
    let mut f = Finding::new(one.code, format!("{who}: {}", one.what)).hint(one.hint).key(key);
    f.environment = Some(one.environment.clone());
    f.count = replicas.len();
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale(name: &str, what: &str) -> PerReplica {
        PerReplica {
            code: Code::StaleTag,
            environment: "prod".into(),
            name: name.into(),
            instance: format!("host/{name}"),
            what: what.into(),
            hint: "redeploy",
        }
    }

    #[test]
    fn replicas_saying_the_same_are_one_finding_with_a_count() {
        let mut items: Vec<PerReplica> = (1..=7).rev().map(|i| stale(&format!("api-{i}"), "on api:1")).collect();
        items.insert(3, stale("web-1", "on web:1"));
        let found = group(items);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].message, "7 replicas (api-1, api-2, api-3, api-4, api-5, …): on api:1");
        assert_eq!(found[0].count, 7);
        assert!(found[0].key.starts_with("host/api-1,host/api-2,"));
        assert_eq!(
            (found[1].message.as_str(), found[1].count, found[1].key.as_str()),
            ("web-1: on web:1", 1, "host/web-1")
        );
    }
}
