//! The syntax of a RabbitMQ `rabbitmq.conf` (the "new style", sysctl-like
//! format RabbitMQ reads with cuttlefish), parsed with nom. Only the syntax
//! lives here: which keys Warren uses, and what their values mean, is
//! `Config::apply_rabbitmq_conf`.
//!
//! The grammar is cuttlefish's (`conf_parse.peg`, Kyorai/cuttlefish 3.6),
//! rule for rule:
//!
//! ```text
//! config    = line*
//! line      = (setting | include | comment | ws+) (crlf | eof) | crlf
//! setting   = ws* key ws* "=" ws* (multiline | quoted | plain) ws* comment?
//! key       = word ("." word)*
//! word      = ("\." | [A-Za-z0-9_-])+
//! multiline = "'''" (any character, newlines too)* "'''"   quotes and newlines trimmed at both ends
//! quoted    = "'" [^']* "'"
//! plain     = (!(ws* crlf | comment) any)+
//! comment   = ws* "#" [^\n]*
//! include   = ws* "include" ws+ [A-Za-z0-9_.*/-]+ comment?
//! ws        = [ \t]     crlf = "\r"? "\n"
//! ```
//!
//! So `#` starts a comment anywhere in a plain value, with the whitespace
//! before it: `default_pass = pa#ss` sets the password `pa`, as every
//! RabbitMQ does (3.10's cuttlefish 3.0.1 answers `{["default_pass"],"pa"}`).
//! A value that holds a `#` is written in single quotes,
//! `default_pass = 'pa#ss'`, as cuttlefish 3.3 (2024, in RabbitMQ 3.13 and
//! 4.x: rabbitmq-server #11907) and later read it;
//! a single-quoted value cannot hold a `'`. RabbitMQ releases with an older
//! cuttlefish (3.10 among them) keep the quotes as part of the value and cut
//! it at the `#`. Other details as cuttlefish has them: a value keeps inner
//! whitespace and loses trailing whitespace before a comment or line end
//! (not before the end of a file without a final newline); `\.` in a key is
//! a dot inside one segment; a later setting of a key overrides an earlier
//! one (the caller applies them in order).

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_until, take_while, take_while1};
use nom::character::complete::{anychar, char, line_ending};
use nom::combinator::{eof, not, opt, recognize, value};
use nom::multi::{many0_count, many1_count};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// One meaningful line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// `key = value`. The key as written (`\.` kept), the value without its
    /// quotes.
    Setting { key: &'a str, value: &'a str },
    /// `include path`: another file (or a glob) cuttlefish reads too.
    Include(&'a str),
}

/// An item and the line it starts on (from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub line: usize,
    pub item: Item<'a>,
}

/// Where the text stops following the grammar: the line and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub text: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: expected 'key = value', got '{}'", self.line, self.text)
    }
}

/// Every setting and include of `text`, in file order; comments and blank
/// lines dropped. Fails at the first line that is none of those, as
/// cuttlefish refuses the whole file.
pub fn parse(text: &str) -> Result<Vec<Entry<'_>>, SyntaxError> {
    let mut entries = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while !rest.is_empty() {
        let Ok((after, item)) = conf_line(rest) else {
            let text = rest.lines().next().unwrap_or("").trim().to_owned();
            return Err(SyntaxError { line, text });
        };
        if let Some(item) = item {
            entries.push(Entry { line, item });
        }
        // Every alternative of a line consumes at least one character, so
        // this always advances.
        line += rest[..rest.len() - after.len()].matches('\n').count();
        rest = after;
    }
    Ok(entries)
}

type Res<'a, T> = IResult<&'a str, T>;

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `line = (setting | include | comment | ws+) (crlf | eof) | crlf`.
fn conf_line(i: &str) -> Res<'_, Option<Item<'_>>> {
    let end = alt((line_ending, eof));
    let content = alt((setting.map(Some), include.map(Some), value(None, comment), value(None, take_while1(is_ws))));
    alt(((content, end).map(|(item, _)| item), value(None, line_ending))).parse(i)
}

/// `setting = ws* key ws* "=" ws* (multiline | quoted | plain) ws* comment?`.
/// As in the PEG, once a quoted form matched there is no going back to
/// `plain`: `'ab' cd` is an error, not the value `'ab' cd`.
fn setting(i: &str) -> Res<'_, Item<'_>> {
    let (i, (_, key, _, _, _, value, _, _)) = (
        take_while(is_ws),
        key,
        take_while(is_ws),
        char('='),
        take_while(is_ws),
        alt((multiline, quoted, plain)),
        take_while(is_ws),
        opt(comment),
    )
        .parse(i)?;
    Ok((i, Item::Setting { key, value }))
}

/// `key = word ("." word)*`, `word = ("\." | [A-Za-z0-9_-])+`.
fn key(i: &str) -> Res<'_, &str> {
    let word = || {
        recognize(many1_count(alt((
            tag("\\."),
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        ))))
    };
    recognize((word(), many0_count((char('.'), word())))).parse(i)
}

/// `'''…'''`: any text, over lines; quotes and line breaks at either end
/// are trimmed (cuttlefish's `string:trim(Node, both, [$', $\n, "\r\n"])`).
fn multiline(i: &str) -> Res<'_, &str> {
    delimited(tag("'''"), take_until("'''"), tag("'''")).map(trim_multiline).parse(i)
}

fn trim_multiline(mut s: &str) -> &str {
    while let Some(t) = s.strip_prefix('\'').or_else(|| s.strip_prefix("\r\n")).or_else(|| s.strip_prefix('\n')) {
        s = t;
    }
    while let Some(t) = s.strip_suffix('\'').or_else(|| s.strip_suffix("\r\n")).or_else(|| s.strip_suffix('\n')) {
        s = t;
    }
    s
}

/// `'…'`: anything but a single quote, `#` included.
fn quoted(i: &str) -> Res<'_, &str> {
    delimited(char('\''), take_till(|c| c == '\''), char('\'')).parse(i)
}

/// Up to (not including) trailing whitespace before a line end, or a
/// comment: the first `#` and the whitespace before it.
fn plain(i: &str) -> Res<'_, &str> {
    let stop = (take_while(is_ws), alt((line_ending, tag("#"))));
    recognize(many1_count(preceded(not(stop), anychar))).parse(i)
}

/// `comment = ws* "#" [^\n]*`.
fn comment(i: &str) -> Res<'_, &str> {
    recognize((take_while(is_ws), char('#'), take_till(|c| c == '\n'))).parse(i)
}

/// `include = ws* "include" ws+ path comment?`.
fn include(i: &str) -> Res<'_, Item<'_>> {
    let path = take_while1(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '/'));
    let (i, (_, _, _, path, _)) =
        (take_while(is_ws), tag("include"), take_while1(is_ws), path, opt(comment)).parse(i)?;
    Ok((i, Item::Include(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Vec<(&str, &str)> {
        parse(text)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.item {
                Item::Setting { key, value } => Some((key, value)),
                Item::Include(_) => None,
            })
            .collect()
    }

    fn one(text: &str) -> &str {
        match settings(text).as_slice() {
            [(_, v)] => v,
            other => panic!("expected one setting in {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_hash_in_a_plain_value_starts_a_comment_as_in_rabbitmq() {
        // What RabbitMQ 3.10 (cuttlefish 3.0.1) answered for these lines; so
        // did it for every unquoted case in these tests.
        assert_eq!(one("default_pass = pa#ss\n"), "pa");
        assert_eq!(one("default_user=gu#est # trailing comment\n"), "gu");
        assert_eq!(one("disk_free_limit.absolute = 50MB#x\n"), "50MB");
        assert_eq!(one("x = a#"), "a");
        assert_eq!(one("log.file = \"quoted # value\"\n"), "\"quoted", "double quotes are plain characters");
        assert_eq!(one("management.path_prefix = a\\#b\n"), "a\\", "a backslash escapes nothing");
    }

    #[test]
    fn a_single_quoted_value_keeps_its_hash() {
        // A generated password with '#', the reason cuttlefish 3.3 added quoting.
        assert_eq!(one("default_pass = 'e9238-7_49%#sod7'\n"), "e9238-7_49%#sod7");
        assert_eq!(one("default_pass = 'p#ss word'   # the comment after it\n"), "p#ss word");
        assert_eq!(one("default_pass = 'a#b'#c"), "a#b");
        assert_eq!(one("x = ''\n"), "");
        // Unclosed: not a quoted value, so a plain one (cut at the '#').
        assert_eq!(one("x = 'ab#c\n"), "'ab");
        // A quoted value with more after it is an error, as in the PEG.
        assert_eq!(parse("x = 'ab' cd\n").unwrap_err().line, 1);
    }

    #[test]
    fn a_triple_quoted_value_spans_lines() {
        let text = "a = 1\nquery = '''\n(uid=${username})\n# not a comment\n'''\nb = 2\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries[1].item, Item::Setting { key: "query", value: "(uid=${username})\n# not a comment" });
        assert_eq!(entries[2], Entry { line: 6, item: Item::Setting { key: "b", value: "2" } });
        assert!(parse("q = '''never closed\n").is_err());
    }

    #[test]
    fn whitespace_comments_and_line_ends() {
        let text = "# a comment\n   # indented comment\n\t\n\nb.c = x y  z\t \n  loopback_users.guest   =   false   \nk = v\r\nl=1";
        assert_eq!(settings(text), vec![("b.c", "x y  z"), ("loopback_users.guest", "false"), ("k", "v"), ("l", "1")]);
        // Everything after the first '=' is the value.
        assert_eq!(one("a = b = c\n"), "b = c");
        // Trailing whitespace stays only at the end of a file without a final newline (cuttlefish keeps it too).
        assert_eq!(one("x = a b  "), "a b  ");
        assert_eq!(one("h = été\n"), "été");
        assert_eq!(one("x\t=\ttab\tval\t\n"), "tab\tval");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn keys_are_dotted_words() {
        assert_eq!(settings("i_j-k.L9 = ok\ne\\.f.g = v\n"), vec![("i_j-k.L9", "ok"), ("e\\.f.g", "v")]);
        for bad in ["x =", "x = #c", "= v", "no equals", "a b = c", "x.=1", "x..y = 1", "ké = v"] {
            assert!(parse(bad).is_err(), "{bad:?} is not a setting");
        }
    }

    #[test]
    fn includes_and_errors_name_their_line() {
        let entries = parse("a = 1\ninclude conf.d/*.conf # more\n").unwrap();
        assert_eq!(entries[1], Entry { line: 2, item: Item::Include("conf.d/*.conf") });
        assert_eq!(one("include = x\n"), "x", "a setting first, as the PEG tries it");
        let err = parse("a = 1\n\n  what is this  \nb = 2\n").unwrap_err();
        assert_eq!(err, SyntaxError { line: 3, text: "what is this".into() });
        assert_eq!(err.to_string(), "line 3: expected 'key = value', got 'what is this'");
    }
}
