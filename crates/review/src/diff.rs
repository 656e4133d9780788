//! The semantic difference of two snapshots: per area, the objects added, removed or changed,
//! and per changed object the facts that changed (a list fact by the lines it lost and
//! gained, so that a route or a rule reads as one line removed and one added).

use std::collections::HashMap;

use serde::Serialize;

use crate::snapshot::{Area, Object, Snapshot, Value};

/// What changed between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    /// Differences in what the snapshots are of (Kubernetes version, seed, form).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<FieldChange>,
    pub areas: Vec<AreaDiff>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.areas.is_empty()
    }

    /// Objects added, removed or changed, over every area.
    pub fn objects(&self) -> usize {
        self.areas.iter().map(|a| a.objects.len()).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaDiff {
    /// The section's key (`nodes`, `services`, …).
    pub area: &'static str,
    #[serde(skip)]
    pub kind: Area,
    pub objects: Vec<ObjectChange>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    pub name: String,
    pub change: ChangeKind,
    pub facts: Vec<FieldChange>,
}

/// One fact before and after (`None`: absent). For two lists, `removed` and `added` hold the
/// lines one has and the other has not, in their list's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
}

/// The difference from `before` to `after`.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Diff {
    let mut header = Vec::new();
    let pairs = [
        (
            "kubernetesVersion",
            &before.kubernetes_version,
            &after.kubernetes_version,
        ),
        ("seed", &before.seed.to_string(), &after.seed.to_string()),
        (
            "form",
            &before.form.name().to_string(),
            &after.form.name().to_string(),
        ),
        ("rules", &before.rules.to_string(), &after.rules.to_string()),
    ];
    for (name, b, a) in pairs {
        if b != a {
            header.push(FieldChange {
                name: name.to_string(),
                before: Some(Value::Scalar(b.clone())),
                after: Some(Value::Scalar(a.clone())),
                removed: Vec::new(),
                added: Vec::new(),
            });
        }
    }
    let empty = Default::default();
    let mut areas = Vec::new();
    for area in Area::ALL {
        let b = before.sections.get(&area).unwrap_or(&empty);
        let a = after.sections.get(&area).unwrap_or(&empty);
        let mut objects = Vec::new();
        // Both maps are sorted: walk them together.
        let mut bi = b.iter().peekable();
        let mut ai = a.iter().peekable();
        loop {
            let order = match (bi.peek(), ai.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((bk, _)), Some((ak, _))) => bk.cmp(ak),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (k, o) = bi.next().expect("peeked");
                    objects.push(whole(k, o, ChangeKind::Removed));
                }
                std::cmp::Ordering::Greater => {
                    let (k, o) = ai.next().expect("peeked");
                    objects.push(whole(k, o, ChangeKind::Added));
                }
                std::cmp::Ordering::Equal => {
                    let (k, bo) = bi.next().expect("peeked");
                    let (_, ao) = ai.next().expect("peeked");
                    if bo != ao {
                        objects.push(ObjectChange {
                            name: k.clone(),
                            change: ChangeKind::Changed,
                            facts: facts(bo, ao),
                        });
                    }
                }
            }
        }
        if !objects.is_empty() {
            areas.push(AreaDiff {
                area: area.key(),
                kind: area,
                objects,
            });
        }
    }
    Diff { header, areas }
}

fn whole(name: &str, o: &Object, change: ChangeKind) -> ObjectChange {
    let facts = o
        .iter()
        .map(|(k, v)| {
            let (before, after) = match change {
                ChangeKind::Removed => (Some(v.clone()), None),
                _ => (None, Some(v.clone())),
            };
            FieldChange {
                name: k.clone(),
                before,
                after,
                removed: Vec::new(),
                added: Vec::new(),
            }
        })
        .collect();
    ObjectChange {
        name: name.to_string(),
        change,
        facts,
    }
}

fn facts(b: &Object, a: &Object) -> Vec<FieldChange> {
    let mut names: Vec<&String> = b.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in names {
        let (bv, av) = (b.get(n), a.get(n));
        if bv == av {
            continue;
        }
        let (removed, added) = match (bv, av) {
            (Some(Value::List(bl)), Some(Value::List(al))) => lines(bl, al),
            _ => (Vec::new(), Vec::new()),
        };
        out.push(FieldChange {
            name: n.clone(),
            before: bv.cloned(),
            after: av.cloned(),
            removed,
            added,
        });
    }
    out
}

/// The lines of `b` that `a` lacks and of `a` that `b` lacks, as multisets (a rule written
/// twice and now once is one line removed), each in its list's order. Two lists with the same
/// lines in another order give two empty lists: the fact still changed (order matters for
/// rules), and renderers say so.
fn lines(b: &[String], a: &[String]) -> (Vec<String>, Vec<String>) {
    let mut count: HashMap<&str, i64> = HashMap::new();
    for l in a {
        *count.entry(l).or_default() += 1;
    }
    let mut removed = Vec::new();
    for l in b {
        match count.get_mut(l.as_str()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => removed.push(l.clone()),
        }
    }
    let mut count: HashMap<&str, i64> = HashMap::new();
    for l in b {
        *count.entry(l).or_default() += 1;
    }
    let mut added = Vec::new();
    for l in a {
        match count.get_mut(l.as_str()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => added.push(l.clone()),
        }
    }
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Form, Section};

    fn snap(nodes: &[(&str, &[&str])]) -> Snapshot {
        let mut section = Section::new();
        for (name, cidrs) in nodes {
            let mut o = Object::new();
            o.insert(
                "podCIDRs".into(),
                Value::List(cidrs.iter().map(|c| c.to_string()).collect()),
            );
            o.insert("ready".into(), Value::Scalar("true".into()));
            section.insert(name.to_string(), o);
        }
        Snapshot {
            scenario: "s".into(),
            kubernetes_version: "1.33".into(),
            seed: 0,
            form: Form::Full,
            rules: false,
            sections: [(Area::Nodes, section)].into(),
        }
    }

    #[test]
    fn names_the_objects_and_facts_that_changed() {
        let a = snap(&[
            ("n1", &["10.0.0.0/24"]),
            ("n2", &["10.0.1.0/24"]),
            ("n3", &[]),
        ]);
        let b = snap(&[
            ("n1", &["10.0.0.0/24"]),
            ("n2", &["10.0.2.0/24", "fd00::/64"]),
            ("n4", &[]),
        ]);
        let d = diff(&a, &b);
        assert!(d.header.is_empty());
        let [area] = d.areas.as_slice() else {
            panic!("{d:?}")
        };
        assert_eq!(area.area, "nodes");
        let got: Vec<(&str, ChangeKind)> = area
            .objects
            .iter()
            .map(|o| (o.name.as_str(), o.change))
            .collect();
        assert_eq!(
            got,
            [
                ("n2", ChangeKind::Changed),
                ("n3", ChangeKind::Removed),
                ("n4", ChangeKind::Added)
            ]
        );
        let f = &area.objects[0].facts[0];
        assert_eq!(f.name, "podCIDRs");
        assert_eq!(f.removed, ["10.0.1.0/24"]);
        assert_eq!(f.added, ["10.0.2.0/24", "fd00::/64"]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn list_lines_are_compared_as_multisets() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            lines(&s(&["a", "a", "b"]), &s(&["a", "c"])),
            (s(&["a", "b"]), s(&["c"]))
        );
        assert_eq!(lines(&s(&["a", "b"]), &s(&["b", "a"])), (vec![], vec![]));
    }
}
