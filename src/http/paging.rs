//! Sorting, filtering, paging and column selection of list answers, as
//! RabbitMQ's API does them for its UI and tools:
//! `?page=&page_size=&name=&use_regex=&sort=&sort_reverse=&columns=`.
//!
//! Lists sorted by name (the default) are filtered and paged before any
//! object is rendered, so a page of 100 out of 10,000 queues renders 100.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// RabbitMQ's largest page.
const MAX_PAGE_SIZE: u64 = 500;
const DEFAULT_PAGE_SIZE: u64 = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    name: Option<String>,
    use_regex: Option<String>,
    sort: Option<String>,
    sort_reverse: Option<String>,
    columns: Option<String>,
}

/// What a list handler lists: something with a name (and a vhost) that
/// renders to RabbitMQ's JSON.
pub(crate) trait Listed {
    fn vhost(&self) -> &str;
    fn name(&self) -> &str;
}

fn truthy(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| s == "true")
}

/// The value at a dotted path (`message_stats.publish_details.rate`).
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Keeps only the listed (dotted) columns of an object.
fn select(v: Value, columns: &[&str]) -> Value {
    let mut out = Map::new();
    for c in columns {
        let Some(found) = at(&v, c) else { continue };
        let mut parts = c.split('.').peekable();
        let mut into = &mut out;
        while let Some(key) = parts.next() {
            if parts.peek().is_none() {
                into.insert(key.to_owned(), found.clone());
                break;
            }
            into = match into.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new())) {
                Value::Object(m) => m,
                _ => break,
            };
        }
    }
    Value::Object(out)
}

enum NameFilter {
    None,
    Substring(String),
    Regex(regex::Regex),
}

impl NameFilter {
    fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::None => true,
            NameFilter::Substring(s) => name.to_lowercase().contains(s),
            NameFilter::Regex(r) => r.is_match(name),
        }
    }
}

impl ListQuery {
    fn filter(&self) -> ApiResult<NameFilter> {
        Ok(match self.name.as_deref().filter(|n| !n.is_empty()) {
            None => NameFilter::None,
            Some(n) if truthy(&self.use_regex) => NameFilter::Regex(
                regex::RegexBuilder::new(n)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ApiError::bad_request(format!("invalid regex '{n}': {e}")))?,
            ),
            Some(n) => NameFilter::Substring(n.to_lowercase()),
        })
    }

    /// `(page, page_size)` when paging was asked for.
    fn paging(&self) -> ApiResult<Option<(u64, u64)>> {
        let Some(page) = &self.page else { return Ok(None) };
        let invalid = || ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            error: "invalid_pagination_parameters",
            reason: format!(
                "Invalid pagination parameters: page number {page}, page size {}",
                self.page_size.as_deref().unwrap_or("undefined")
            ),
        };
        let n: u64 = page.parse().map_err(|_| invalid())?;
        let size: u64 = match &self.page_size {
            Some(s) => s.parse().map_err(|_| invalid())?,
            None => DEFAULT_PAGE_SIZE,
        };
        if n < 1 || !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(invalid());
        }
        Ok(Some((n, size)))
    }

    /// Sorts, filters, pages and renders `items`; `render` builds one
    /// item's JSON.
    pub(crate) fn answer<T: Listed>(&self, items: Vec<T>, render: impl Fn(&T) -> Value) -> ApiResult<Value> {
        self.answer_sorted(items, render, true)
    }

    /// As `answer`, keeping the items' own order unless a sort is asked
    /// for (bindings: by source, then destination).
    pub(crate) fn answer_in_order<T: Listed>(&self, items: Vec<T>, render: impl Fn(&T) -> Value) -> ApiResult<Value> {
        self.answer_sorted(items, render, false)
    }

    fn answer_sorted<T: Listed>(
        &self,
        mut items: Vec<T>,
        render: impl Fn(&T) -> Value,
        sort_by_default: bool,
    ) -> ApiResult<Value> {
        let filter = self.filter()?;
        let paging = self.paging()?;
        let reverse = truthy(&self.sort_reverse);
        let columns: Vec<&str> = self.columns.as_deref().map(|c| c.split(',').collect()).unwrap_or_default();
        let total = items.len();
        items.retain(|i| filter.matches(i.name()));
        let filtered = items.len();
        let by_name = match self.sort.as_deref() {
            None | Some("") => Some(false),
            Some("name") => Some(true),
            _ => None,
        };
        let mut rendered: Vec<Value> = match by_name {
            Some(name_only) => {
                if name_only {
                    items.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.vhost().cmp(b.vhost())));
                } else if sort_by_default {
                    items.sort_by(|a, b| a.vhost().cmp(b.vhost()).then_with(|| a.name().cmp(b.name())));
                }
                if reverse {
                    items.reverse();
                }
                let range = page_range(paging, items.len());
                items[range].iter().map(&render).collect()
            }
            None => {
                let key = self.sort.as_deref().unwrap_or_default();
                let mut all: Vec<Value> = items.iter().map(&render).collect();
                all.sort_by(|a, b| compare(at(a, key), at(b, key)));
                if reverse {
                    all.reverse();
                }
                let range = page_range(paging, all.len());
                all.drain(range).collect()
            }
        };
        if !columns.is_empty() {
            rendered = rendered.into_iter().map(|v| select(v, &columns)).collect();
        }
        let Some((page, size)) = paging else { return Ok(Value::Array(rendered)) };
        Ok(serde_json::json!({
            "filtered_count": filtered,
            "item_count": rendered.len(),
            "items": rendered,
            "page": page,
            "page_count": (filtered as u64).div_ceil(size),
            "page_size": size,
            "total_count": total,
        }))
    }
}

fn page_range(paging: Option<(u64, u64)>, len: usize) -> std::ops::Range<usize> {
    let Some((page, size)) = paging else { return 0..len };
    let start = ((page - 1).saturating_mul(size)).min(len as u64) as usize;
    let end = (start as u64).saturating_add(size).min(len as u64) as usize;
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(&'static str, &'static str, u64);
    impl Listed for Item {
        fn vhost(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            self.1
        }
    }
    fn render(i: &Item) -> Value {
        serde_json::json!({"vhost": i.0, "name": i.1, "messages": i.2, "stats": {"rate": i.2}})
    }
    fn items() -> Vec<Item> {
        vec![Item("/", "pq2", 5), Item("/", "aliveness-test", 1), Item("b", "pq1", 9), Item("/", "pq3", 0)]
    }
    fn query(q: &str) -> ListQuery {
        let uri: axum::http::Uri = format!("/?{q}").parse().unwrap();
        axum::extract::Query::try_from_uri(&uri).unwrap().0
    }
    fn names(v: &Value) -> Vec<&str> {
        let list = v.get("items").unwrap_or(v).as_array().unwrap();
        list.iter().map(|i| i["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn pages_as_rabbitmq_does() {
        let v = query("page=2&page_size=2").answer(items(), render).unwrap();
        assert_eq!(names(&v), ["pq3", "pq1"], "default order: vhost, then name");
        assert_eq!(v["page_count"], 2);
        assert_eq!(v["total_count"], 4);
        assert_eq!(v["item_count"], 2);
        let v = query("page=3&page_size=2").answer(items(), render).unwrap();
        assert_eq!(v["items"], serde_json::json!([]), "past the end: an empty page, not an error");
        let v = query("page=1&page_size=2&name=PQ").answer(items(), render).unwrap();
        assert_eq!((v["filtered_count"].as_u64(), v["total_count"].as_u64()), (Some(3), Some(4)));
        let v = query("name=pq%5B13%5D&use_regex=true&sort=name").answer(items(), render).unwrap();
        assert_eq!(names(&v), ["pq1", "pq3"]);
    }

    #[test]
    fn sorts_by_any_column_and_selects_columns() {
        let v = query("sort=messages&sort_reverse=true&columns=name,stats.rate").answer(items(), render).unwrap();
        assert_eq!(names(&v), ["pq1", "pq2", "aliveness-test", "pq3"]);
        assert_eq!(v[0], serde_json::json!({"name": "pq1", "stats": {"rate": 9}}));
    }

    #[test]
    fn refuses_bad_pages_with_rabbitmqs_error() {
        for q in ["page=0", "page=1&page_size=1000", "page=x"] {
            let e = query(q).answer(items(), render).unwrap_err();
            assert_eq!(e.error, "invalid_pagination_parameters", "{q}");
        }
        let e = query("page=1&page_size=1000").answer(items(), render).unwrap_err();
        assert_eq!(e.reason, "Invalid pagination parameters: page number 1, page size 1000");
    }
}
