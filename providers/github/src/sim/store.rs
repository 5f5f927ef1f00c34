//! The in-memory GitHub behind [`GitHubSim`](super::GitHubSim): repositories, issues,
//! comments, pulls, files, search, with ETags and `Link` pagination.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri};
use ratewise_testkit::HandlerContext;
use ratewise_testkit::dialect::{iso8601, json_response};
use serde_json::{Value, json};

/// The path GitHub routes on: an Enterprise `/api/v3` prefix removed.
pub(super) fn route(path: &str) -> &str {
    path.strip_prefix("/api/v3").unwrap_or(path)
}

/// The weak `ETag` of a representation: `W/"<FNV-1a of the body>"`.
pub fn etag_of(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("W/\"{hash:016x}\"")
}

/// Repositories by `(owner, name)`, a version bumped by every change, and the rendered GETs
/// of the current version (so a conditional GET is rendered once per change, not per request).
#[derive(Debug, Default)]
pub(super) struct Store {
    state: Mutex<State>,
    rendered: Mutex<HashMap<String, Rendered>>,
}

#[derive(Debug, Default)]
struct State {
    repos: BTreeMap<(String, String), Repo>,
    version: u64,
}

#[derive(Clone, Debug)]
struct Rendered {
    version: u64,
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Rendered {
    fn response(self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

#[derive(Debug, Default)]
struct Repo {
    id: u64,
    issues: Vec<Value>,
    pulls: Vec<Value>,
    files: BTreeMap<String, Vec<u8>>,
    comments: u64,
}

fn user() -> Value {
    json!({"login": "ratewise-sim", "id": 1, "type": "User",
           "html_url": "https://github.com/ratewise-sim"})
}

/// An open issue `number` of `owner/name`, created `now`.
fn new_issue(
    (owner, name): (&str, &str),
    number: usize,
    (title, body): (&str, Value),
    labels: &[&str],
    now: &str,
) -> Value {
    let labels: Vec<Value> = labels
        .iter()
        .map(|l| json!({"name": l, "color": "ededed", "description": null}))
        .collect();
    json!({
        "id": 10_000 + number, "node_id": format!("I_sim{number}"),
        "number": number, "title": title, "body": body,
        "state": "open", "state_reason": null, "user": user(), "labels": labels,
        "assignees": [], "comments": 0, "locked": false,
        "html_url": format!("https://github.com/{owner}/{name}/issues/{number}"),
        "created_at": now, "updated_at": now, "closed_at": null,
    })
}

fn not_found() -> http::Response<Bytes> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest",
                "status": "404"}),
    )
}

/// Query parameters, percent-decoded.
fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i.saturating_add(1)..i.saturating_add(3))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i = i.saturating_add(3);
            }
            (b'+', _) => {
                out.push(b' ');
                i = i.saturating_add(1);
            }
            (other, _) => {
                out.push(other);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One page of `items` by `per_page` (default 30, at most 100) and `page` (default 1), with
/// the `Link` header value when more pages exist.
fn paginate(
    items: Vec<Value>,
    params: &BTreeMap<String, String>,
    uri: &Uri,
) -> (Vec<Value>, Option<String>) {
    let per_page = params
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = params
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let start = per_page.saturating_mul(page.saturating_sub(1));
    let slice: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let link_to = |n: usize| {
        let mut params = params.clone();
        params.insert("page".to_owned(), n.to_string());
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::request::component(k),
                    crate::request::component(v)
                )
            })
            .collect();
        let origin = match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => String::new(),
        };
        format!("<{origin}{}?{}>", uri.path(), query.join("&"))
    };
    let link = (page < pages).then(|| {
        format!(
            "{}; rel=\"next\", {}; rel=\"last\"",
            link_to(page.saturating_add(1)),
            link_to(pages)
        )
    });
    (slice, link)
}

fn list_response(
    items: Vec<Value>,
    params: &BTreeMap<String, String>,
    uri: &Uri,
) -> http::Response<Bytes> {
    let (page, link) = paginate(items, params, uri);
    with_link(json_response(StatusCode::OK, &Value::Array(page)), link)
}

fn with_link(mut response: http::Response<Bytes>, link: Option<String>) -> http::Response<Bytes> {
    if let Some(value) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(http::header::LINK, value);
    }
    response
}

fn has_labels(issue: &Value, wanted: &str) -> bool {
    wanted.split(',').filter(|l| !l.is_empty()).all(|label| {
        issue["labels"]
            .as_array()
            .is_some_and(|ls| ls.iter().any(|l| l["name"] == label))
    })
}

fn state_matches(item: &Value, state: Option<&String>) -> bool {
    match state.map(String::as_str) {
        Some("all") => true,
        Some("closed") => item["state"] == "closed",
        _ => item["state"] == "open",
    }
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The GET of `uri` as of now: rendered once per version of the store.
    fn get(&self, uri: &Uri) -> http::Response<Bytes> {
        let state = self.lock();
        let key = uri.to_string();
        let cached = self
            .rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|r| r.version == state.version)
            .cloned();
        if let Some(rendered) = cached {
            return rendered.response();
        }
        let response = self.render(&state, uri);
        let (parts, body) = response.into_parts();
        let rendered = Rendered {
            version: state.version,
            status: parts.status,
            headers: parts.headers,
            body,
        };
        drop(state);
        let mut cache = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(key, rendered.clone());
        rendered.response()
    }

    pub(super) fn add_repo(&self, owner: &str, name: &str) {
        let mut state = self.lock();
        state.version = state.version.wrapping_add(1);
        let id = 1_000_u64.saturating_add(state.repos.len() as u64);
        state
            .repos
            .entry((owner.to_owned(), name.to_owned()))
            .or_insert_with(|| Repo {
                id,
                ..Repo::default()
            });
    }

    pub(super) fn add_file(&self, owner: &str, name: &str, path: &str, content: &[u8]) {
        self.add_repo(owner, name);
        let mut state = self.lock();
        state.version = state.version.wrapping_add(1);
        if let Some(repo) = state.repos.get_mut(&(owner.to_owned(), name.to_owned())) {
            repo.files
                .insert(path.trim_matches('/').to_owned(), content.to_vec());
        }
    }

    pub(super) fn add_issue(&self, owner: &str, name: &str, title: &str, labels: &[&str]) {
        self.add_repo(owner, name);
        let mut state = self.lock();
        state.version = state.version.wrapping_add(1);
        if let Some(repo) = state.repos.get_mut(&(owner.to_owned(), name.to_owned())) {
            let number = repo.issues.len().saturating_add(1);
            let body = Value::String(format!("Seeded issue {number}."));
            let issue = new_issue(
                (owner, name),
                number,
                (title, body),
                labels,
                "2026-01-01T00:00:00Z",
            );
            repo.issues.push(issue);
        }
    }

    pub(super) fn add_pull(&self, owner: &str, name: &str, title: &str, head: &str, base: &str) {
        self.add_repo(owner, name);
        let mut state = self.lock();
        state.version = state.version.wrapping_add(1);
        if let Some(repo) = state.repos.get_mut(&(owner.to_owned(), name.to_owned())) {
            let number = repo
                .issues
                .len()
                .saturating_add(repo.pulls.len())
                .saturating_add(1);
            repo.pulls.insert(
                0,
                json!({"id": 5_000 + number, "number": number, "state": "open", "title": title,
                       "body": null, "user": user(), "draft": false,
                       "head": {"label": format!("{owner}:{head}"), "ref": head, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
                       "base": {"label": format!("{owner}:{base}"), "ref": base, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
                       "merged_at": null,
                       "html_url": format!("https://github.com/{owner}/{name}/pull/{number}"),
                       "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}),
            );
        }
    }

    pub(super) fn issue_count(&self, owner: &str, name: &str) -> usize {
        self.lock()
            .repos
            .get(&(owner.to_owned(), name.to_owned()))
            .map_or(0, |r| r.issues.len())
    }

    /// The `ETag` a GET of `request` would carry now (`None` when it would not be a 200).
    pub(super) fn etag(&self, request: &http::Request<Bytes>) -> Option<String> {
        let response = self.get(request.uri());
        (response.status() == StatusCode::OK).then(|| etag_of(response.body()))
    }

    /// Answers a request that passed every limit.
    pub(super) fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        if request.method() == Method::GET {
            let mut response = self.get(request.uri());
            if response.status() == StatusCode::OK
                && let Ok(etag) = HeaderValue::from_str(&etag_of(response.body()))
            {
                response.headers_mut().insert(http::header::ETAG, etag);
            }
            return response;
        }
        if request.method() == Method::POST {
            return self.post(request, ctx);
        }
        not_found()
    }

    fn render(&self, state: &State, uri: &Uri) -> http::Response<Bytes> {
        let path = route(uri.path());
        let params = query(uri);
        if path == "/search/issues" {
            return search(state, &params, uri);
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let repos = &state.repos;
        let (owner, name, rest) = match segments.as_slice() {
            ["repos", owner, name, rest @ ..] => (decode(owner), decode(name), rest),
            _ => return not_found(),
        };
        let Some(repo) = repos.get(&(owner.clone(), name.clone())) else {
            return not_found();
        };
        match rest {
            [] => json_response(
                StatusCode::OK,
                &json!({"id": repo.id, "name": name, "full_name": format!("{owner}/{name}"),
                        "owner": {"login": owner, "id": 2, "type": "Organization"},
                        "private": false, "description": "A simulated repository", "fork": false,
                        "html_url": format!("https://github.com/{owner}/{name}"),
                        "default_branch": "main",
                        "open_issues_count": repo.issues.iter().filter(|i| i["state"] == "open").count(),
                        "stargazers_count": 0, "forks_count": 0, "archived": false}),
            ),
            ["issues"] => {
                let items: Vec<Value> = repo
                    .issues
                    .iter()
                    .rev()
                    .filter(|i| state_matches(i, params.get("state")))
                    .filter(|i| params.get("labels").is_none_or(|l| has_labels(i, l)))
                    .cloned()
                    .collect();
                list_response(items, &params, uri)
            }
            ["issues", number] => {
                let found = number
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| repo.issues.get(n.wrapping_sub(1)));
                match found {
                    Some(issue) => json_response(StatusCode::OK, issue),
                    None => not_found(),
                }
            }
            ["pulls"] => {
                let items: Vec<Value> = repo
                    .pulls
                    .iter()
                    .filter(|p| state_matches(p, params.get("state")))
                    .cloned()
                    .collect();
                list_response(items, &params, uri)
            }
            ["contents", file @ ..] => {
                let path: Vec<String> = file.iter().map(|s| decode(s)).collect();
                let path = path.join("/");
                match repo.files.get(&path) {
                    Some(content) => {
                        let encoded = STANDARD.encode(content);
                        let wrapped: Vec<&str> = encoded
                            .as_bytes()
                            .chunks(60)
                            .filter_map(|c| std::str::from_utf8(c).ok())
                            .collect();
                        let file_name = path.rsplit('/').next().unwrap_or(&path);
                        json_response(
                            StatusCode::OK,
                            &json!({"type": "file", "encoding": "base64", "size": content.len(),
                                    "name": file_name, "path": path,
                                    "content": format!("{}\n", wrapped.join("\n")),
                                    "sha": etag_of(content).trim_start_matches("W/").trim_matches('"'),
                                    "html_url": format!("https://github.com/{owner}/{name}/blob/main/{path}"),
                                    "download_url": format!("https://raw.githubusercontent.com/{owner}/{name}/main/{path}")}),
                        )
                    }
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }
}

fn search(state: &State, params: &BTreeMap<String, String>, uri: &Uri) -> http::Response<Bytes> {
    let q = params.get("q").cloned().unwrap_or_default();
    let mut repo_filter = None;
    let mut wanted = None;
    let mut words = Vec::new();
    for term in q.split_whitespace() {
        match term.split_once(':') {
            Some(("repo", full)) => repo_filter = Some(full.to_owned()),
            Some(("is" | "state", s @ ("open" | "closed"))) => wanted = Some(s.to_owned()),
            Some(_) => {}
            None => words.push(term.to_ascii_lowercase()),
        }
    }
    let mut items = Vec::new();
    for ((owner, name), repo) in state.repos.iter() {
        if repo_filter
            .as_deref()
            .is_some_and(|f| f != format!("{owner}/{name}"))
        {
            continue;
        }
        for issue in repo.issues.iter().rev() {
            let text = format!(
                "{} {}",
                issue["title"].as_str().unwrap_or(""),
                issue["body"].as_str().unwrap_or("")
            )
            .to_ascii_lowercase();
            let state_ok = wanted.as_deref().is_none_or(|s| issue["state"] == s);
            if state_ok && words.iter().all(|w| text.contains(w.as_str())) {
                let mut item = issue.clone();
                item["score"] = json!(1.0);
                items.push(item);
            }
        }
    }
    let total = items.len();
    let (page, link) = paginate(items, params, uri);
    with_link(
        json_response(
            StatusCode::OK,
            &json!({"total_count": total, "incomplete_results": false, "items": page}),
        ),
        link,
    )
}

impl Store {
    fn post(&self, request: &http::Request<Bytes>, ctx: &HandlerContext) -> http::Response<Bytes> {
        let path = route(request.uri().path());
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body: Value = serde_json::from_slice(request.body()).unwrap_or(Value::Null);
        let mut state = self.lock();
        state.version = state.version.wrapping_add(1);
        let (owner, name, rest) = match segments.as_slice() {
            ["repos", owner, name, rest @ ..] => (decode(owner), decode(name), rest),
            _ => return not_found(),
        };
        let Some(repo) = state.repos.get_mut(&(owner.clone(), name.clone())) else {
            return not_found();
        };
        let now = iso8601(ctx.wall);
        match rest {
            ["issues"] => {
                let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
                    return json_response(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &json!({"message": "Validation Failed",
                                "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
                                "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
                                "status": "422"}),
                    );
                };
                let labels: Vec<&str> = body["labels"]
                    .as_array()
                    .map(|ls| ls.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let issue = new_issue(
                    (&owner, &name),
                    repo.issues.len().saturating_add(1),
                    (title, body["body"].clone()),
                    &labels,
                    &now,
                );
                repo.issues.push(issue.clone());
                json_response(StatusCode::CREATED, &issue)
            }
            ["issues", number, "comments"] => {
                let Some(issue) = number
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| repo.issues.get_mut(n.wrapping_sub(1)))
                else {
                    return not_found();
                };
                let count = issue["comments"].as_u64().unwrap_or(0).saturating_add(1);
                issue["comments"] = json!(count);
                issue["updated_at"] = json!(now);
                repo.comments = repo.comments.saturating_add(1);
                json_response(
                    StatusCode::CREATED,
                    &json!({"id": 20_000 + ctx.index, "body": body["body"].clone(), "user": user(),
                            "html_url": format!("https://github.com/{owner}/{name}/issues/{number}#issuecomment-{}", 20_000 + ctx.index),
                            "issue_url": format!("/repos/{owner}/{name}/issues/{number}"),
                            "created_at": now, "updated_at": now}),
                )
            }
            _ => not_found(),
        }
    }
}
