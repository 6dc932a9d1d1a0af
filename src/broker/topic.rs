//! Topic pattern matching as RabbitMQ does it.
//!
//! Keys and patterns split on '.'; the empty key has no words (so it matches
//! only the empty pattern and patterns made of `#`), while "a..b" has an empty
//! middle word. `*` matches exactly one word, `#` zero or more.

/// A binding key pre-split into words at bind time, so a publish only splits
/// its routing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPattern {
    words: Vec<Word>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Word {
    Literal(String),
    Star,
    Hash,
}

/// RabbitMQ's word split: "" has no words, every '.' separates two words.
pub fn split_words(key: &str) -> impl Iterator<Item = &str> {
    let empty = key.is_empty();
    key.split('.').filter(move |_| !empty)
}

impl TopicPattern {
    pub fn new(pattern: &str) -> Self {
        let mut words = Vec::new();
        for w in split_words(pattern) {
            let word = match w {
                "*" => Word::Star,
                "#" => Word::Hash,
                lit => Word::Literal(lit.to_owned()),
            };
            // "#.#" means the same as "#"; collapsing keeps matching linear.
            if word == Word::Hash && words.last() == Some(&Word::Hash) {
                continue;
            }
            words.push(word);
        }
        TopicPattern { words }
    }

    /// Matches pre-split key words. Dynamic programming over (pattern word,
    /// key word) so patterns with many `#` cannot blow up.
    pub fn matches(&self, key: &[&str]) -> bool {
        let n = key.len();
        // reach[j]: the pattern prefix so far can consume exactly key[..j].
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for word in &self.words {
            match word {
                Word::Hash => {
                    for j in 1..=n {
                        reach[j] = reach[j] || reach[j - 1];
                    }
                }
                Word::Star => {
                    for j in (1..=n).rev() {
                        reach[j] = reach[j - 1];
                    }
                    reach[0] = false;
                }
                Word::Literal(lit) => {
                    for j in (1..=n).rev() {
                        reach[j] = reach[j - 1] && key[j - 1] == lit;
                    }
                    reach[0] = false;
                }
            }
        }
        reach[n]
    }
}

/// Convenience for one-off checks and tests.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let words: Vec<&str> = split_words(key).collect();
    TopicPattern::new(pattern).matches(&words)
}

#[cfg(test)]
mod tests {
    use super::topic_matches as m;

    #[test]
    fn literal_star_and_hash() {
        assert!(m("a.b.c", "a.b.c"));
        assert!(!m("a.b.c", "a.b"));
        assert!(m("a.*.c", "a.b.c"));
        assert!(!m("a.*.c", "a.c"));
        assert!(!m("a.*", "a.b.c"));
        assert!(m("a.#", "a"));
        assert!(m("a.#", "a.b.c"));
        assert!(m("#.c", "c"));
        assert!(m("#.c", "a.b.c"));
        assert!(!m("#.c", "a.b"));
        assert!(m("*.orange.*", "quick.orange.rabbit"));
        assert!(!m("*.orange.*", "quick.orange.male.rabbit"));
        assert!(m("lazy.#", "lazy.orange.male.rabbit"));
    }

    #[test]
    fn hash_alone_matches_everything_including_empty() {
        assert!(m("#", ""));
        assert!(m("#", "a"));
        assert!(m("#", "a.b.c"));
        assert!(m("#", "."));
        assert!(m("#.#", "a.b"));
    }

    #[test]
    fn hash_in_the_middle() {
        assert!(m("a.#.b", "a.b"));
        assert!(m("a.#.b", "a.x.b"));
        assert!(m("a.#.b", "a.x.y.b"));
        assert!(!m("a.#.b", "a.x.y"));
        assert!(!m("a.#.b", "b.a.b.x"));
        assert!(m("#.a.#", "x.a.y"));
        assert!(m("*.#.*", "a.b"));
        assert!(!m("*.#.*", "a"));
    }

    #[test]
    fn empty_words_and_keys() {
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("", "a"));
        assert!(m("a..b", "a..b"));
        assert!(m("a.*.b", "a..b"));
        assert!(!m("a.b", "a..b"));
        assert!(m("*", "."[..0].trim()) == m("*", ""));
        assert!(m("*.*", "."));
        assert!(m("a.", "a."));
        assert!(m("a.*", "a."));
        assert!(!m("a", "a."));
    }

    #[test]
    fn many_hashes_stay_fast() {
        let key = vec!["x"; 200].join(".");
        assert!(!m("#.a.#.b.#.c.#.d.#.e.#.f", &key));
    }
}
