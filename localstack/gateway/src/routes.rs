//! Matches request paths against API Gateway resource templates (`/tenants/{slug}`,
//! `/files/{proxy+}`), literal segments winning over parameters as in API Gateway.

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub method: String,
    pub resource: String,
    segments: Vec<Segment>,
    pub function: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, PartialEq)]
pub struct Matched<'a> {
    pub route: &'a Route,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
pub enum Lookup<'a> {
    Found(Matched<'a>),
    MethodNotAllowed,
    NotFound,
}

impl Route {
    pub fn new(method: &str, resource: &str, function: usize) -> Self {
        let segments = split(resource)
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_string()),
                        None => Segment::Param(name.to_string()),
                    },
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        Route {
            method: method.to_ascii_uppercase(),
            resource: resource.to_string(),
            segments,
            function,
        }
    }

    /// Parameters if `path` fits this template; literal matches score higher.
    fn fit(&self, path: &[&str]) -> Option<(usize, Vec<(String, String)>)> {
        let mut params = Vec::new();
        let mut score = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    if i >= path.len() {
                        return None;
                    }
                    params.push((name.clone(), path[i..].join("/")));
                    return Some((score, params));
                }
                _ if i >= path.len() => return None,
                Segment::Literal(l) if l == path[i] => score += 2,
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    score += 1;
                    params.push((name.clone(), percent_decode(path[i])));
                }
            }
        }
        (self.segments.len() == path.len()).then_some((score, params))
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Decodes `%XX` escapes; a malformed escape stays as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        RouteTable { routes }
    }

    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let parts: Vec<&str> = split(path).collect();
        // The best-scoring fit whose method matches.
        let mut best: Option<(usize, Matched<'_>)> = None;
        let mut path_known = false;
        for route in &self.routes {
            if let Some((score, params)) = route.fit(&parts) {
                path_known = true;
                let method_ok = route.method == method || route.method == "ANY";
                if method_ok && best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, Matched { route, params }));
                }
            }
        }
        match best {
            Some((_, matched)) => Lookup::Found(matched),
            None if path_known => Lookup::MethodNotAllowed,
            None => Lookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(vec![
            Route::new("GET", "/tenants/{slug}", 0),
            Route::new("POST", "/tenants/{slug}/suspend", 1),
            Route::new("GET", "/tenants/mine", 2),
            Route::new("GET", "/files/{key+}", 3),
        ])
    }

    #[test]
    fn literal_beats_parameter_and_params_are_decoded() {
        let t = table();
        match t.lookup("GET", "/tenants/mine") {
            Lookup::Found(m) => assert_eq!(m.route.function, 2),
            other => panic!("{other:?}"),
        }
        match t.lookup("GET", "/tenants/ac%20me") {
            Lookup::Found(m) => {
                assert_eq!(m.params, vec![("slug".to_string(), "ac me".to_string())])
            }
            other => panic!("{other:?}"),
        }
        match t.lookup("GET", "/files/a/b/c.txt") {
            Lookup::Found(m) => {
                assert_eq!(m.params, vec![("key".to_string(), "a/b/c.txt".to_string())])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_method_and_unknown_path_are_told_apart() {
        let t = table();
        assert_eq!(
            t.lookup("DELETE", "/tenants/acme"),
            Lookup::MethodNotAllowed
        );
        assert_eq!(
            t.lookup("GET", "/tenants/acme/extra/more"),
            Lookup::NotFound
        );
        assert_eq!(t.lookup("GET", "/"), Lookup::NotFound);
    }
}
