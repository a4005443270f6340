//! "Did you mean …?" suggestions by edit distance, for unknown instructions and flags.

/// Edit distance (insert, delete, substitute, swap two neighbours) over characters, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: at most one edit per
/// three characters (and at least one).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    // Long garbage is no typo; also keeps the quadratic distance cheap.
    if len > 40 {
        return None;
    }
    let allowed = (len / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|&(d, _)| d <= allowed)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["COPY", "CMD", "FROM", "WORKDIR", "ENTRYPOINT"];
        let cases = [
            ("COPPY", Some("COPY")),
            ("form", Some("FROM")),
            ("WORKDIRR", Some("WORKDIR")),
            ("ENTRYPONT", Some("ENTRYPOINT")),
            ("XYZ", None),
            ("", None),
        ];
        for (word, want) in cases {
            assert_eq!(closest(word, &names), want, "{word}");
        }
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
