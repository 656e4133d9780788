//! "Did you mean …?" for misspelt keys, flags and kinds.
//!
//! Only ever computed when something is already wrong, so it may be quadratic in the length of
//! the words; it is linear in the number of candidates.

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions, the
/// "restricted" Damerau distance): `nmae` → `name` is 1, not 2.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    // Three rows suffice: the current one, the previous one and the one before it (for
    // transpositions).
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

/// Lower-cases and drops `-`, `_` and `.`, so that `node_ip`, `nodeIP` and `node-ip` compare
/// equal.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be what the user meant: the same
/// word up to case and separators, within an edit distance of about a third of its length
/// (at least 1, at most 4), or, failing that, the first candidate that starts with the word
/// (`remove` → `removeNodes`, for words of four letters or more). Ties go to the earlier
/// candidate, so callers list candidates in a meaningful order.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let folded = fold(word);
    let mut best: Option<(usize, &'a str)> = None;
    let mut prefixed: Option<&'a str> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        if prefixed.is_none() && folded.chars().count() >= 4 && fold(c).starts_with(&folded) {
            prefixed = Some(c);
        }
        let d = if fold(c) == folded {
            0
        } else {
            edit_distance(&folded, &fold(c))
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let close = best.filter(|(d, c)| {
        let len = word.chars().count().max(c.chars().count());
        *d <= (len / 3).clamp(1, 4)
    });
    close.map(|(_, c)| c).or(prefixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_transpositions_once() {
        let cases = [
            ("name", "name", 0),
            ("nmae", "name", 1),
            ("ipFamilyPolcy", "ipFamilyPolicy", 1),
            ("kitten", "sitting", 3),
            ("", "abc", 3),
            ("ca", "abc", 3),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn suggests_only_close_words() {
        let keys = ["name", "kubernetesVersion", "seed", "cluster", "nodes"];
        let cases = [
            ("nmae", Some("name")),
            ("kubernetesversion", Some("kubernetesVersion")),
            ("kubernetes-version", Some("kubernetesVersion")),
            ("kubernetesVerison", Some("kubernetesVersion")),
            ("node", Some("nodes")),
            ("sed", Some("seed")),
            ("xyz", None),
            ("clust", Some("cluster")),
            ("fabricate", None),
        ];
        for (word, want) in cases {
            assert_eq!(did_you_mean(word, keys), want, "{word}");
        }
    }
}
