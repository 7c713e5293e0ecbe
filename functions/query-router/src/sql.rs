//! Building one read query from a client's `{filter, sort, limit, offset, columns, count}`: every
//! identifier must name a real column of the table (from the catalogue) and is always quoted;
//! every value is a bound parameter, cast to its column's type inside the statement. Nothing a
//! client sends becomes SQL text except identifiers that the catalogue vouches for.
//!
//! A value read from a row (`select_expr`), sent back as an `eq` filter on its column, finds
//! that row: `Kind` says how each type is bound back, or why it cannot be compared at all.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Value};
use tokio_postgres::types::Type;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
pub const MAX_OFFSET: i64 = 1_000_000;
pub const MAX_IN_VALUES: usize = 1000;
/// `or`/`and` groups inside groups: the top-level filter is depth 0, a group in a group in a
/// group is 3.
pub const MAX_GROUP_DEPTH: usize = 3;
pub const MAX_GROUP_MEMBERS: usize = 50;
/// Conditions (one per column and operator) in the whole filter, every group included.
pub const MAX_CONDITIONS: usize = 200;

/// A column as the catalogue describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    pub name: String,
    /// The type's name in `pg_type` (`int4`, `timestamptz`, `_text`, ...).
    #[serde(rename = "type")]
    pub udt: String,
}

/// A refused request: safe to send back (it names only identifiers that passed the identifier
/// rule, never values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// `^[A-Za-z_][A-Za-z0-9_]{0,63}$`
pub fn is_identifier(raw: &str) -> bool {
    let mut bytes = raw.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && raw.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A double-quoted identifier. Identifiers here already passed `is_identifier` and the
/// catalogue, so there is no quote to escape; doubling any is still done, as the rule says.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A parameter of the statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
    Int(i64),
    /// A `bytea` filter value, decoded from the base64 that rows carry.
    Bytes(Vec<u8>),
    BytesArray(Vec<Vec<u8>>),
}

impl Param {
    /// The type to declare the parameter as (`Client::query_typed`, no prepare round trip).
    /// Every placeholder in the SQL is written `$n::<that type>`, so the statement and the
    /// declaration cannot disagree.
    pub fn pg_type(&self) -> Type {
        match self {
            Param::Text(_) => Type::TEXT,
            Param::TextArray(_) => Type::TEXT_ARRAY,
            Param::Int(_) => Type::INT8,
            Param::Bytes(_) => Type::BYTEA,
            Param::BytesArray(_) => Type::BYTEA_ARRAY,
        }
    }

    /// The value, to bind (with `pg_type`).
    pub fn boxed(&self) -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
        match self {
            Param::Text(s) => Box::new(s.clone()),
            Param::TextArray(v) => Box::new(v.clone()),
            Param::Int(i) => Box::new(*i),
            Param::Bytes(b) => Box::new(b.clone()),
            Param::BytesArray(v) => Box::new(v.clone()),
        }
    }

    /// `pg_type` as written in the placeholder's cast.
    fn cast(&self) -> &'static str {
        match self {
            Param::Text(_) => "text",
            Param::TextArray(_) => "text[]",
            Param::Int(_) => "int8",
            Param::Bytes(_) => "bytea",
            Param::BytesArray(_) => "bytea[]",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    /// The columns of each row, in order.
    pub columns: Vec<String>,
    pub limit: i64,
    pub offset: i64,
    /// Asked for with `count: "exact"`.
    pub count: Option<Count>,
}

/// `SELECT count(*)` of every row the filter matches, limit and offset aside: one `int8`.
///
/// The caller runs it in the same read-only transaction as `Statement::sql`: the same
/// `TimeZone` reads the filter's timestamps alike, and at `REPEATABLE READ` it sees the same
/// snapshot, so `total` agrees with the rows. Like any statement there it is bounded by the
/// statement timeout (its own: the request can take up to two timeouts).
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub sql: String,
    /// It binds `Statement::params[..params]`: the filter's. Limit and offset are bound after
    /// them, and the count never names them.
    pub params: usize,
}

/// One request body, as sent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// Column -> value or `{op: value}`, all ANDed; the keys `or` and `and` are groups (a list
    /// of filters of the same grammar), so a column literally named `or` or `and` cannot be
    /// filtered.
    #[serde(default)]
    pub filter: Map<String, Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    pub sort: Option<Value>,
    /// `null` is the default, as documented.
    pub limit: Option<Value>,
    pub offset: Option<Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    pub columns: Option<Vec<String>>,
    /// `"exact"` asks for `Statement::count`; checked by `build` so that a wrong value is
    /// refused without being echoed.
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    pub count: Option<Value>,
}

fn column<'a>(table: &'a [Column], name: &str, field: &str) -> Result<&'a Column, Refused> {
    if !is_identifier(name) {
        return Err(Refused(format!(
            "{field}: a column name is not a valid identifier"
        )));
    }
    table
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Refused(format!("{field}: unknown column {name}")))
}

fn null_refused(field: &str) -> Refused {
    Refused(format!(
        "{field}: null is not a value; use {{\"is_null\": true}}"
    ))
}

/// The text a JSON scalar is bound as (then cast to the column's type by PostgreSQL).
fn scalar_text(v: &Value, field: &str) -> Result<String, Refused> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(null_refused(field)),
        _ => Err(Refused(format!(
            "{field}: must be a string, number or boolean"
        ))),
    }
}

/// The JSON text of a value for a jsonb column: a string is bound quoted (`"abc"`, which is
/// jsonb; `abc` is not), objects and arrays as their JSON.
fn json_text(v: &Value, field: &str) -> Result<String, Refused> {
    match v {
        Value::Null => Err(null_refused(field)),
        other => Ok(other.to_string()),
    }
}

/// A bytea value as rows carry it: standard base64, padded. Line breaks are skipped, as
/// PostgreSQL's own `encode(.., 'base64')` puts one every 76 characters.
fn base64_bytes(v: &Value, field: &str) -> Result<Vec<u8>, Refused> {
    let s = match v {
        Value::String(s) => s,
        Value::Null => return Err(null_refused(field)),
        _ => {
            return Err(Refused(format!(
                "{field}: a bytea value is a base64 string"
            )))
        }
    };
    let unbroken: String = s.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    BASE64.decode(unbroken).map_err(|_| {
        Refused(format!(
            "{field}: not valid base64 (standard alphabet, padded)"
        ))
    })
}

/// How a column's value becomes JSON in the result: numbers and booleans as JSON, numeric as a
/// string (exact), timestamps as RFC 3339 (UTC), json as JSON, bytea as base64 (one line), the
/// rest as text. `Kind` binds each of these back.
fn select_expr(c: &Column) -> String {
    let q = quote(&c.name);
    match c.udt.as_str() {
        "bool" | "int2" | "int4" | "int8" | "float4" | "float8" | "json" | "jsonb"
        | "timestamptz" | "date" => format!("to_jsonb({q})"),
        "timestamp" => format!("to_jsonb({q} AT TIME ZONE 'UTC')"),
        "bytea" => format!("to_jsonb(replace(encode({q}, 'base64'), chr(10), ''))"),
        _ => format!("to_jsonb({q}::text)"),
    }
}

/// How a filter value is bound for a column's type so that the value `select_expr` read from a
/// row finds that row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Everything bound as text and cast to the column's type: PostgreSQL reads back what it
    /// wrote (numbers, bool, numeric, timestamptz and date in the session's UTC, text, enums,
    /// uuid, ...).
    Plain,
    /// Read as `col AT TIME ZONE 'UTC'` with an offset; a cast of that text to `timestamp`
    /// would drop any offset silently, so the value is read as a timestamptz and turned to UTC.
    Timestamp,
    /// Base64 in rows: decoded and bound as bytes. Only equality, which is all base64 keeps.
    Bytea,
    /// Bound as JSON text, so a JSON string is quoted.
    Jsonb,
    /// `json`, `xml` and arrays of them: no equality operator in PostgreSQL.
    Incomparable,
    /// `_text`, `_int4`, ...: read as PostgreSQL's array text (`{a,b}`), which casts back.
    Array,
}

impl Kind {
    fn of(udt: &str) -> Kind {
        match udt {
            "timestamp" => Kind::Timestamp,
            "bytea" => Kind::Bytea,
            "jsonb" => Kind::Jsonb,
            "json" | "_json" | "xml" | "_xml" => Kind::Incomparable,
            u if u.starts_with('_') => Kind::Array,
            _ => Kind::Plain,
        }
    }
}

/// The conditions of a filter as they are built: the parameters bound so far and the count
/// against `MAX_CONDITIONS`.
struct Conditions<'a> {
    table: &'a [Column],
    params: Vec<Param>,
    built: usize,
}

impl Conditions<'_> {
    /// The placeholder of a new parameter, cast to the parameter's declared type.
    fn bind(&mut self, p: Param) -> String {
        let cast = p.cast();
        self.params.push(p);
        format!("${}::{cast}", self.params.len())
    }

    /// The conditions of one filter map, to be ANDed. `path` names the map in errors
    /// (`filter`, `filter.or[1]`); `depth` is the number of groups around it.
    fn filter(
        &mut self,
        filter: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Vec<String>, Refused> {
        let mut out = Vec::new();
        for (key, spec) in filter {
            match key.as_str() {
                "or" | "and" => out.push(self.group(key, spec, path, depth)?),
                name => {
                    let col = column(self.table, name, path)?;
                    self.column(col, spec, &format!("{path}.{}", col.name), &mut out)?;
                }
            }
        }
        Ok(out)
    }

    /// `(m1 OR m2 ...)` or `(m1 AND m2 ...)`, each member its own conditions ANDed.
    fn group(
        &mut self,
        key: &str,
        spec: &Value,
        path: &str,
        depth: usize,
    ) -> Result<String, Refused> {
        let field = format!("{path}.{key}");
        if depth >= MAX_GROUP_DEPTH {
            return Err(Refused(format!(
                "{field}: or/and groups nest at most {MAX_GROUP_DEPTH} deep"
            )));
        }
        let members = match spec {
            Value::Array(m) if (1..=MAX_GROUP_MEMBERS).contains(&m.len()) => m,
            _ => {
                return Err(Refused(format!(
                    "{field}: takes a list of 1 to {MAX_GROUP_MEMBERS} filters"
                )))
            }
        };
        let mut parts = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let Value::Object(member) = member else {
                return Err(Refused(format!("{at}: must be a filter object")));
            };
            if member.is_empty() {
                return Err(Refused(format!("{at}: an empty filter")));
            }
            let mut conds = self.filter(member, &at, depth + 1)?;
            parts.push(if conds.len() == 1 {
                conds.remove(0)
            } else {
                format!("({})", conds.join(" AND "))
            });
        }
        let joiner = if key == "or" { " OR " } else { " AND " };
        Ok(format!("({})", parts.join(joiner)))
    }

    /// A column's value (`eq`) or `{op: value, ...}` (each ANDed), pushed onto `out`.
    fn column(
        &mut self,
        col: &Column,
        spec: &Value,
        field: &str,
        out: &mut Vec<String>,
    ) -> Result<(), Refused> {
        let ops: Vec<(&str, &Value)> = match spec {
            Value::Object(m) if !m.is_empty() => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Value::Object(_) => return Err(Refused(format!("{field}: an empty condition"))),
            other => vec![("eq", other)],
        };
        for (op, v) in ops {
            self.built += 1;
            if self.built > MAX_CONDITIONS {
                return Err(Refused(format!(
                    "filter: at most {MAX_CONDITIONS} conditions in all"
                )));
            }
            out.push(self.condition(col, op, v, field)?);
        }
        Ok(())
    }

    fn condition(
        &mut self,
        col: &Column,
        op: &str,
        v: &Value,
        field: &str,
    ) -> Result<String, Refused> {
        let q = quote(&col.name);
        let ty = quote(&col.udt);
        let kind = Kind::of(&col.udt);
        let incomparable = || {
            let hint = if col.udt.ends_with("json") {
                "; store it as jsonb to compare it"
            } else {
                ""
            };
            Refused(format!(
                "{field}: a {} column has no equality in PostgreSQL: use is_null, like or ilike{hint}",
                col.udt.trim_start_matches('_')
            ))
        };
        let bytea_only = || {
            Refused(format!(
                "{field}: a bytea column takes eq, neq, in (base64 values) or is_null"
            ))
        };
        Ok(match op {
            "eq" | "neq" | "gt" | "gte" | "lt" | "lte" => {
                let sym = match op {
                    "eq" => "=",
                    "neq" => "<>",
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                match kind {
                    Kind::Incomparable => return Err(incomparable()),
                    Kind::Bytea if !matches!(op, "eq" | "neq") => return Err(bytea_only()),
                    Kind::Bytea => {
                        let p = self.bind(Param::Bytes(base64_bytes(v, field)?));
                        format!("{q} {sym} {p}")
                    }
                    Kind::Jsonb => {
                        let p = self.bind(Param::Text(json_text(v, field)?));
                        format!("{q} {sym} CAST({p} AS {ty})")
                    }
                    Kind::Timestamp => {
                        let p = self.bind(Param::Text(scalar_text(v, field)?));
                        format!("{q} {sym} (CAST({p} AS timestamptz) AT TIME ZONE 'UTC')")
                    }
                    Kind::Plain | Kind::Array => {
                        let p = self.bind(Param::Text(scalar_text(v, field)?));
                        format!("{q} {sym} CAST({p} AS {ty})")
                    }
                }
            }
            "like" | "ilike" => {
                if kind == Kind::Bytea {
                    return Err(bytea_only());
                }
                let Value::String(s) = v else {
                    return Err(Refused(format!("{field}: {op} takes a string pattern")));
                };
                let p = self.bind(Param::Text(s.clone()));
                format!("CAST({q} AS text) {} {p}", op.to_uppercase())
            }
            "in" => {
                match kind {
                    Kind::Incomparable => return Err(incomparable()),
                    Kind::Array => {
                        return Err(Refused(format!(
                            "{field}: in does not take an array column; use or with eq"
                        )))
                    }
                    _ => {}
                }
                let Value::Array(items) = v else {
                    return Err(Refused(format!("{field}: in takes a list")));
                };
                if items.is_empty() || items.len() > MAX_IN_VALUES {
                    return Err(Refused(format!(
                        "{field}: in takes 1 to {MAX_IN_VALUES} values"
                    )));
                }
                match kind {
                    Kind::Bytea => {
                        let bytes = items
                            .iter()
                            .map(|i| base64_bytes(i, field))
                            .collect::<Result<Vec<_>, _>>()?;
                        let p = self.bind(Param::BytesArray(bytes));
                        format!("{q} = ANY({p})")
                    }
                    Kind::Timestamp => {
                        let texts = items
                            .iter()
                            .map(|i| scalar_text(i, field))
                            .collect::<Result<Vec<_>, _>>()?;
                        let p = self.bind(Param::TextArray(texts));
                        format!(
                            "{q} = ANY(ARRAY(SELECT u.v AT TIME ZONE 'UTC' FROM unnest(CAST({p} AS timestamptz[])) AS u(v)))"
                        )
                    }
                    _ => {
                        let texts = items
                            .iter()
                            .map(|i| {
                                if kind == Kind::Jsonb {
                                    json_text(i, field)
                                } else {
                                    scalar_text(i, field)
                                }
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let p = self.bind(Param::TextArray(texts));
                        format!("{q} = ANY(CAST({p} AS {ty}[]))")
                    }
                }
            }
            "is_null" => match v {
                Value::Bool(true) => format!("{q} IS NULL"),
                Value::Bool(false) => format!("{q} IS NOT NULL"),
                _ => return Err(Refused(format!("{field}: is_null takes true or false"))),
            },
            _ => {
                let hint = if kind == Kind::Jsonb {
                    "; a jsonb object is compared as {\"eq\": {...}}"
                } else {
                    ""
                };
                return Err(Refused(format!(
                    "{field}: unknown operator; use eq, neq, gt, gte, lt, lte, like, ilike, in or is_null{hint}"
                )));
            }
        })
    }
}

fn int_field(
    v: Option<&Value>,
    field: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, Refused> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|x| (min..=max).contains(x))
            .ok_or_else(|| {
                Refused(format!(
                    "{field}: must be a whole number from {min} to {max}"
                ))
            }),
        Some(_) => Err(Refused(format!(
            "{field}: must be a whole number from {min} to {max}"
        ))),
    }
}

/// Builds the statement for `table` (schema-qualified by the caller's catalogue).
pub fn build(
    schema: &str,
    table_name: &str,
    table: &[Column],
    body: &QueryBody,
) -> Result<Statement, Refused> {
    let selected: Vec<&Column> = match &body.columns {
        None => table.iter().collect(),
        Some(names) if names.is_empty() => {
            return Err(Refused("columns: must name at least one column".into()))
        }
        Some(names) => names
            .iter()
            .map(|n| column(table, n, "columns"))
            .collect::<Result<_, _>>()?,
    };
    let counted = match &body.count {
        None => false,
        Some(Value::String(s)) if s == "exact" => true,
        Some(_) => return Err(Refused("count: the only value is \"exact\"".into())),
    };
    let mut conds = Conditions {
        table,
        params: Vec::new(),
        built: 0,
    };
    let conditions = conds.filter(&body.filter, "filter", 0)?;
    let sorts: Vec<String> = match &body.sort {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Refused("sort: each entry is \"col\" or \"col:desc\"".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Refused(
                "sort: \"col\", \"col:desc\" or a list of them".into(),
            ))
        }
    };
    let mut order = Vec::new();
    for s in &sorts {
        let (name, dir) = match s.split_once(':') {
            None => (s.as_str(), "ASC"),
            Some((n, "asc")) => (n, "ASC"),
            Some((n, "desc")) => (n, "DESC"),
            Some(_) => return Err(Refused("sort: the direction is asc or desc".into())),
        };
        let col = column(table, name, "sort")?;
        order.push(format!("{} {dir}", quote(&col.name)));
    }
    let limit = int_field(body.limit.as_ref(), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = int_field(body.offset.as_ref(), "offset", 0, 0, MAX_OFFSET)?;
    // jsonb_build_array takes at most 100 arguments: wide rows are built in chunks.
    let row = selected
        .chunks(90)
        .map(|chunk| {
            format!(
                "jsonb_build_array({})",
                chunk
                    .iter()
                    .map(|c| select_expr(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" || ");
    let from = format!(" FROM {}.{}", quote(schema), quote(table_name));
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let count = counted.then(|| Count {
        sql: format!("SELECT count(*){from}{where_sql}"),
        params: conds.params.len(),
    });
    let mut sql = format!("SELECT {row}{from}{where_sql}");
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    // One more row than asked tells whether another page follows.
    let lim = conds.bind(Param::Int(limit + 1));
    let off = conds.bind(Param::Int(offset));
    sql.push_str(&format!(" LIMIT {lim} OFFSET {off}"));
    Ok(Statement {
        sql,
        params: conds.params,
        columns: selected.iter().map(|c| c.name.clone()).collect(),
        limit,
        offset,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Vec<Column> {
        [
            ("id", "int4"),
            ("name", "text"),
            ("price", "numeric"),
            ("at", "timestamptz"),
            ("seen", "timestamp"),
            ("blob", "bytea"),
            ("doc", "json"),
            ("data", "jsonb"),
            ("tags", "_text"),
        ]
        .iter()
        .map(|(n, t)| Column {
            name: n.to_string(),
            udt: t.to_string(),
        })
        .collect()
    }

    fn body(v: Value) -> QueryBody {
        serde_json::from_value(v).unwrap()
    }

    fn built(v: Value) -> Statement {
        build("public", "items", &table(), &body(v)).unwrap()
    }

    fn refused(v: Value) -> String {
        build("public", "items", &table(), &body(v)).unwrap_err().0
    }

    /// The statement's conditions: between ` WHERE ` and the ORDER BY or LIMIT.
    fn where_of(st: &Statement) -> &str {
        let (_, rest) = st.sql.split_once(" WHERE ").expect("a WHERE");
        let rest = rest.rsplit_once(" LIMIT ").unwrap().0;
        rest.rsplit_once(" ORDER BY ").map_or(rest, |(w, _)| w)
    }

    /// Every `$n::type` in `sql`, as (n, type).
    fn placeholders(sql: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            rest = &rest[at + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let after = &rest[digits.len()..];
            let cast = after
                .strip_prefix("::")
                .unwrap_or_else(|| panic!("an uncast placeholder ${digits} in {sql}"));
            let mut ty: String = cast
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if cast[ty.len()..].starts_with("[]") {
                ty.push_str("[]");
            }
            found.push((digits.parse().unwrap(), ty));
        }
        found
    }

    #[test]
    fn values_are_parameters_and_identifiers_are_quoted() {
        let st = build(
            "public",
            "items",
            &table(),
            &body(json!({
                "filter": {"name": "x'; DROP TABLE items; --", "id": {"gte": 2, "in": [1, 2]}},
                "sort": ["price:desc", "id"],
                "limit": 5,
                "offset": 10,
                "columns": ["id", "name"]
            })),
        )
        .unwrap();
        assert!(!st.sql.contains("DROP"), "{}", st.sql);
        assert!(st.sql.starts_with(
            "SELECT jsonb_build_array(to_jsonb(\"id\"), to_jsonb(\"name\"::text)) FROM \"public\".\"items\" WHERE "
        ), "{}", st.sql);
        assert!(st.sql.contains("\"name\" = CAST($"));
        assert!(st.sql.contains("ORDER BY \"price\" DESC, \"id\" ASC"));
        assert!(
            st.sql.ends_with("LIMIT $4::int8 OFFSET $5::int8"),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 5);
        assert!(st
            .params
            .contains(&Param::Text("x'; DROP TABLE items; --".into())));
        // One row more than asked, to tell whether a next page exists.
        assert_eq!(st.params[3], Param::Int(6));
        assert_eq!((st.limit, st.offset), (5, 10));
    }

    #[test]
    fn unknown_and_invalid_identifiers_are_refused() {
        let t = table();
        let err = |v: Value| build("public", "items", &t, &body(v)).unwrap_err().0;
        assert_eq!(
            err(json!({"filter": {"nope": 1}})),
            "filter: unknown column nope"
        );
        assert_eq!(
            err(json!({"filter": {"id\" OR 1=1 --": 1}})),
            "filter: a column name is not a valid identifier"
        );
        assert!(err(json!({"sort": "id; DROP"})).starts_with("sort:"));
        assert!(err(json!({"sort": "id:sideways"})).starts_with("sort:"));
        assert!(err(json!({"columns": ["x y"]})).starts_with("columns:"));
        assert!(err(json!({"limit": 1001})).starts_with("limit:"));
        assert!(err(json!({"limit": "10; DROP"})).starts_with("limit:"));
        assert!(err(json!({"offset": -1})).starts_with("offset:"));
        assert!(err(json!({"filter": {"id": {"regex": "x"}}})).contains("unknown operator"));
        assert!(err(json!({"filter": {"id": null}})).contains("is_null"));
        assert!(!is_identifier(&"a".repeat(65)));
        assert!(is_identifier("_a1"));
        assert!(!is_identifier("1a"));
    }

    #[test]
    fn every_operator_builds() {
        let t = table();
        for (op, v, want) in [
            ("eq", json!(1), "\"id\" = CAST($1::text AS \"int4\")"),
            ("neq", json!(1), "\"id\" <> CAST("),
            ("gt", json!(1), "\"id\" > CAST("),
            ("gte", json!(1), "\"id\" >= CAST("),
            ("lt", json!(1), "\"id\" < CAST("),
            ("lte", json!(1), "\"id\" <= CAST("),
            ("like", json!("a%"), "CAST(\"id\" AS text) LIKE $1::text"),
            ("ilike", json!("a%"), "CAST(\"id\" AS text) ILIKE $1::text"),
            (
                "in",
                json!([1, 2]),
                "\"id\" = ANY(CAST($1::text[] AS \"int4\"[]))",
            ),
            ("is_null", json!(true), "\"id\" IS NULL"),
        ] {
            let st = build(
                "public",
                "items",
                &t,
                &body(json!({"filter": {"id": {op: v}}})),
            )
            .unwrap();
            assert!(st.sql.contains(want), "{op}: {}", st.sql);
        }
    }

    #[test]
    fn or_and_groups_are_parenthesised_and_every_value_is_bound() {
        let inj1 = "x') OR 1=1; DROP TABLE items; --";
        let inj2 = "%'); SELECT pg_sleep(10); --";
        let st = built(json!({"filter": {
            "id": {"neq": 3},
            "or": [
                {"id": {"gt": 1}, "name": inj1},
                {"and": [{"price": {"lt": 5}}, {"or": [{"name": {"like": inj2}}]}]}
            ]
        }}));
        assert_eq!(
            where_of(&st),
            concat!(
                "\"id\" <> CAST($1::text AS \"int4\") AND ",
                "((\"id\" > CAST($2::text AS \"int4\") AND \"name\" = CAST($3::text AS \"text\")) OR ",
                "(\"price\" < CAST($4::text AS \"numeric\") AND (CAST(\"name\" AS text) LIKE $5::text)))"
            )
        );
        assert_eq!(
            st.params[..5],
            [
                Param::Text("3".into()),
                Param::Text("1".into()),
                Param::Text(inj1.into()),
                Param::Text("5".into()),
                Param::Text(inj2.into()),
            ]
        );
        assert!(
            !st.sql.contains("DROP")
                && !st.sql.contains("pg_sleep")
                && !where_of(&st).contains('\''),
            "{}",
            st.sql
        );
        assert!(
            st.sql.ends_with("LIMIT $6::int8 OFFSET $7::int8"),
            "{}",
            st.sql
        );

        let st = built(json!({"filter": {"and": [{"id": 1}, {"id": 2, "name": "b"}]}}));
        assert_eq!(
            where_of(&st),
            "(\"id\" = CAST($1::text AS \"int4\") AND (\"id\" = CAST($2::text AS \"int4\") AND \"name\" = CAST($3::text AS \"text\")))"
        );
    }

    #[test]
    fn groups_nest_at_most_three_deep() {
        let nested = |depth: usize| {
            let mut f = json!({"id": 1});
            for i in 0..depth {
                let key = if i % 2 == 0 { "or" } else { "and" };
                f = json!({ key: [f] });
            }
            json!({ "filter": f })
        };
        assert_eq!(
            where_of(&built(nested(3))),
            "(((\"id\" = CAST($1::text AS \"int4\"))))"
        );
        assert_eq!(
            refused(nested(4)),
            "filter.and[0].or[0].and[0].or: or/and groups nest at most 3 deep"
        );
    }

    #[test]
    fn empty_malformed_and_oversized_groups_are_refused() {
        let groups = |n: usize, member: Value| json!({"filter": {"or": vec![member; n]}});
        for (v, want) in [
            (
                json!({"filter": {"or": []}}),
                "filter.or: takes a list of 1 to 50 filters",
            ),
            (
                json!({"filter": {"and": {"id": 1}}}),
                "filter.and: takes a list of 1 to 50 filters",
            ),
            (
                groups(51, json!({"id": 1})),
                "filter.or: takes a list of 1 to 50 filters",
            ),
            (
                json!({"filter": {"and": [{}]}}),
                "filter.and[0]: an empty filter",
            ),
            (
                json!({"filter": {"or": [{"id": 1}, 2]}}),
                "filter.or[1]: must be a filter object",
            ),
            (
                json!({"filter": {"or": [{"id": 1}, {"nope": 2}]}}),
                "filter.or[1]: unknown column nope",
            ),
            (
                json!({"filter": {"or": [{"and": [{"id": 1}, {"id": {}}]}]}}),
                "filter.or[0].and[1].id: an empty condition",
            ),
            (
                groups(
                    41,
                    json!({"id": {"neq": 1, "gt": 1, "gte": 1, "lt": 1, "lte": 1}}),
                ),
                "filter: at most 200 conditions in all",
            ),
        ] {
            assert_eq!(refused(v.clone()), want, "{v}");
        }
        assert!(
            refused(json!({"filter": {"or": [{"price": {"eq": null}}]}}))
                .starts_with("filter.or[0].price: null is not a value")
        );
        assert_eq!(built(groups(50, json!({"id": 1}))).params.len(), 52);
        assert_eq!(
            built(groups(
                40,
                json!({"id": {"neq": 1, "gt": 1, "gte": 1, "lt": 1, "lte": 1}})
            ))
            .params
            .len(),
            202
        );
        // `or` is a group even where a column has that name.
        let with_or = vec![Column {
            name: "or".into(),
            udt: "int4".into(),
        }];
        let err = build("public", "t", &with_or, &body(json!({"filter": {"or": 1}}))).unwrap_err();
        assert_eq!(err.0, "filter.or: takes a list of 1 to 50 filters");
    }

    #[test]
    fn bytea_filters_bind_the_decoded_bytes() {
        let st = built(json!({"filter": {"blob": "AAU="}}));
        assert_eq!(where_of(&st), "\"blob\" = $1::bytea");
        assert_eq!(st.params[0], Param::Bytes(vec![0, 5]));
        let st = built(json!({"filter": {"blob": {"neq": "AAU="}}}));
        assert_eq!(where_of(&st), "\"blob\" <> $1::bytea");
        let st = built(json!({"filter": {"blob": {"in": ["AAU=", "AAY="]}}}));
        assert_eq!(where_of(&st), "\"blob\" = ANY($1::bytea[])");
        assert_eq!(
            st.params[0],
            Param::BytesArray(vec![vec![0, 5], vec![0, 6]])
        );
        // PostgreSQL's encode() breaks base64 lines at 76 characters; such a value still reads.
        let long: Vec<u8> = (0..=99).collect();
        let encoded = BASE64.encode(&long);
        let broken = format!("{}\n{}", &encoded[..76], &encoded[76..]);
        let st = built(json!({"filter": {"blob": broken}}));
        assert_eq!(st.params[0], Param::Bytes(long));
        // Rows carry it on one line.
        assert!(built(json!({}))
            .sql
            .contains("to_jsonb(replace(encode(\"blob\", 'base64'), chr(10), ''))"));
        assert!(built(json!({"filter": {"blob": {"is_null": false}}}))
            .sql
            .contains("\"blob\" IS NOT NULL"));

        let secret = "s3cr3t*not_base64";
        for v in [
            json!({"filter": {"blob": secret}}),
            json!({"filter": {"blob": {"in": ["AAU=", secret]}}}),
            json!({"filter": {"or": [{"blob": {"eq": "AAU"}}]}}),
        ] {
            let err = refused(v.clone());
            assert!(err.contains("not valid base64"), "{v}: {err}");
            assert!(
                err.starts_with("filter.blob:") || err.starts_with("filter.or[0].blob:"),
                "{err}"
            );
            assert!(!err.contains(secret) && !err.contains("AAU"), "{err}");
        }
        for op in ["gt", "gte", "lt", "lte", "like", "ilike"] {
            assert_eq!(
                refused(json!({"filter": {"blob": {op: "AAU="}}})),
                "filter.blob: a bytea column takes eq, neq, in (base64 values) or is_null",
                "{op}"
            );
        }
        assert_eq!(
            refused(json!({"filter": {"blob": 5}})),
            "filter.blob: a bytea value is a base64 string"
        );
    }

    #[test]
    fn json_columns_refuse_comparison_but_not_is_null() {
        for op in ["eq", "neq", "gt", "gte", "lt", "lte", "in"] {
            let v = if op == "in" { json!([1]) } else { json!(1) };
            let err = refused(json!({"filter": {"doc": {op: v}}}));
            assert_eq!(
                err,
                "filter.doc: a json column has no equality in PostgreSQL: use is_null, like or ilike; store it as jsonb to compare it",
                "{op}"
            );
        }
        assert!(refused(json!({"filter": {"doc": {"a": 1}}})).contains("unknown operator"));
        let st = built(json!({"filter": {"doc": {"is_null": true}}}));
        assert_eq!(where_of(&st), "\"doc\" IS NULL");
        let st = built(json!({"filter": {"doc": {"like": "%\"a\"%"}}}));
        assert_eq!(where_of(&st), "CAST(\"doc\" AS text) LIKE $1::text");
    }

    #[test]
    fn jsonb_values_are_bound_as_their_json_text() {
        for (v, text) in [
            (json!("abc"), "\"abc\""),
            (json!(5), "5"),
            (json!(1.5), "1.5"),
            (json!(true), "true"),
            (json!([1, "a"]), "[1,\"a\"]"),
            (
                json!({"eq": {"n": 5, "tags": ["a", "b"]}}),
                "{\"n\":5,\"tags\":[\"a\",\"b\"]}",
            ),
        ] {
            let st = built(json!({"filter": {"data": v}}));
            assert_eq!(
                where_of(&st),
                "\"data\" = CAST($1::text AS \"jsonb\")",
                "{v}"
            );
            assert_eq!(st.params[0], Param::Text(text.into()), "{v}");
        }
        let st = built(json!({"filter": {"data": {"in": ["a", {"n": 1}]}}}));
        assert_eq!(
            where_of(&st),
            "\"data\" = ANY(CAST($1::text[] AS \"jsonb\"[]))"
        );
        assert_eq!(
            st.params[0],
            Param::TextArray(vec!["\"a\"".into(), "{\"n\":1}".into()])
        );
        // An object without `eq` is read as operators, and the refusal says how to compare it.
        assert!(refused(json!({"filter": {"data": {"n": 5}}})).ends_with("{\"eq\": {...}}"));
        assert!(refused(json!({"filter": {"data": {"eq": null}}})).contains("is_null"));
    }

    #[test]
    fn timestamp_values_are_read_as_utc_instants() {
        let st = built(json!({"filter": {"seen": "2026-01-01T00:05:00+00:00"}}));
        assert_eq!(
            where_of(&st),
            "\"seen\" = (CAST($1::text AS timestamptz) AT TIME ZONE 'UTC')"
        );
        let st = built(json!({"filter": {"seen": {"in": ["2026-01-01T00:05:00+00:00"]}}}));
        assert_eq!(
            where_of(&st),
            "\"seen\" = ANY(ARRAY(SELECT u.v AT TIME ZONE 'UTC' FROM unnest(CAST($1::text[] AS timestamptz[])) AS u(v)))"
        );
        let st = built(json!({"filter": {"at": {"gte": "2026-01-01T05:00:00+00:00"}}}));
        assert_eq!(where_of(&st), "\"at\" >= CAST($1::text AS \"timestamptz\")");
    }

    #[test]
    fn array_columns_compare_by_their_text_but_refuse_in() {
        let st = built(json!({"filter": {"tags": "{a,\"b c\"}"}}));
        assert_eq!(where_of(&st), "\"tags\" = CAST($1::text AS \"_text\")");
        assert_eq!(st.params[0], Param::Text("{a,\"b c\"}".into()));
        assert_eq!(
            refused(json!({"filter": {"tags": {"in": ["{a}"]}}})),
            "filter.tags: in does not take an array column; use or with eq"
        );
    }

    /// The value each type is read as (`select_expr`, as in the black-box tests' `items`), sent
    /// back as `eq`, is bound so that PostgreSQL's cast reads the same value again.
    #[test]
    fn a_value_read_from_a_row_is_bound_back_to_find_it() {
        for (udt, read, bound, expr) in [
            (
                "bool",
                json!(false),
                Param::Text("false".into()),
                "CAST($1::text AS \"bool\")",
            ),
            (
                "int8",
                json!(50_000_000_000i64),
                Param::Text("50000000000".into()),
                "CAST($1::text AS \"int8\")",
            ),
            (
                "float8",
                json!(0.30000000000000004),
                Param::Text("0.30000000000000004".into()),
                "CAST($1::text AS \"float8\")",
            ),
            (
                "float4",
                json!(0.1),
                Param::Text("0.1".into()),
                "CAST($1::text AS \"float4\")",
            ),
            (
                "numeric",
                json!("6.25"),
                Param::Text("6.25".into()),
                "CAST($1::text AS \"numeric\")",
            ),
            (
                "timestamptz",
                json!("2026-01-01T05:00:00+00:00"),
                Param::Text("2026-01-01T05:00:00+00:00".into()),
                "CAST($1::text AS \"timestamptz\")",
            ),
            (
                "timestamp",
                json!("2026-01-01T00:05:00+00:00"),
                Param::Text("2026-01-01T00:05:00+00:00".into()),
                "(CAST($1::text AS timestamptz) AT TIME ZONE 'UTC')",
            ),
            (
                "date",
                json!("2026-01-06"),
                Param::Text("2026-01-06".into()),
                "CAST($1::text AS \"date\")",
            ),
            (
                "text",
                json!("item 5"),
                Param::Text("item 5".into()),
                "CAST($1::text AS \"text\")",
            ),
            (
                "_text",
                json!("{a,b}"),
                Param::Text("{a,b}".into()),
                "CAST($1::text AS \"_text\")",
            ),
            (
                "jsonb",
                json!("abc"),
                Param::Text("\"abc\"".into()),
                "CAST($1::text AS \"jsonb\")",
            ),
            (
                "jsonb",
                json!({"n": 5}),
                Param::Text("{\"n\":5}".into()),
                "CAST($1::text AS \"jsonb\")",
            ),
            (
                "bytea",
                json!("AAU="),
                Param::Bytes(vec![0, 5]),
                "$1::bytea",
            ),
        ] {
            let t = [Column {
                name: "c".into(),
                udt: udt.into(),
            }];
            let st = build(
                "public",
                "t",
                &t,
                &body(json!({"filter": {"c": {"eq": read}}})),
            )
            .unwrap_or_else(|e| panic!("{udt}: {e}"));
            assert_eq!(where_of(&st), format!("\"c\" = {expr}"), "{udt}");
            assert_eq!(st.params[0], bound, "{udt}");
        }
    }

    #[test]
    fn count_has_the_same_where_and_only_the_filters_params() {
        let st = built(json!({
            "filter": {"name": "a", "or": [{"id": 1}, {"id": 2}]},
            "count": "exact",
            "sort": "id",
            "limit": 5,
            "offset": 10
        }));
        let count = st.count.clone().expect("a count");
        assert_eq!(
            count.sql,
            concat!(
                "SELECT count(*) FROM \"public\".\"items\" WHERE \"name\" = CAST($1::text AS \"text\") ",
                "AND (\"id\" = CAST($2::text AS \"int4\") OR \"id\" = CAST($3::text AS \"int4\"))"
            )
        );
        assert_eq!(count.params, 3);
        assert_eq!(
            format!(
                "SELECT count(*) FROM \"public\".\"items\" WHERE {}",
                where_of(&st)
            ),
            count.sql
        );
        assert!(placeholders(&count.sql)
            .iter()
            .all(|(n, _)| *n <= count.params));
        assert_eq!(st.params[count.params..], [Param::Int(6), Param::Int(10)]);

        let all = built(json!({"count": "exact"})).count.unwrap();
        assert_eq!(
            (all.sql.as_str(), all.params),
            ("SELECT count(*) FROM \"public\".\"items\"", 0)
        );
        assert_eq!(built(json!({"filter": {"id": 1}})).count, None);
        for v in [
            json!("estimated"),
            json!(true),
            json!(1),
            json!(["exact"]),
            json!(null),
        ] {
            assert_eq!(
                refused(json!({"count": v})),
                "count: the only value is \"exact\"",
                "{v}"
            );
        }
    }

    #[test]
    fn every_placeholder_is_cast_to_its_params_declared_type() {
        assert_eq!(Param::Text("a".into()).pg_type(), Type::TEXT);
        assert_eq!(Param::TextArray(vec![]).pg_type(), Type::TEXT_ARRAY);
        assert_eq!(Param::Int(1).pg_type(), Type::INT8);
        assert_eq!(Param::Bytes(vec![]).pg_type(), Type::BYTEA);
        assert_eq!(Param::BytesArray(vec![]).pg_type(), Type::BYTEA_ARRAY);
        let declared = |cast: &str| match cast {
            "text" => Type::TEXT,
            "text[]" => Type::TEXT_ARRAY,
            "int8" => Type::INT8,
            "bytea" => Type::BYTEA,
            "bytea[]" => Type::BYTEA_ARRAY,
            other => panic!("a placeholder cast to {other}"),
        };
        let st = built(json!({
            "filter": {
                "blob": {"in": ["AAU="]},
                "data": {"eq": {"n": 1}},
                "id": {"in": [1, 2], "gt": 0},
                "name": {"ilike": "a%"},
                "or": [{"blob": "AAY="}, {"seen": {"in": ["2026-01-01T00:00:00Z"]}, "tags": "{a}"}]
            },
            "count": "exact"
        }));
        let mut used = vec![false; st.params.len()];
        let count = st.count.as_ref().unwrap();
        for sql in [st.sql.as_str(), count.sql.as_str()] {
            for (n, cast) in placeholders(sql) {
                assert_eq!(st.params[n - 1].pg_type(), declared(&cast), "${n} in {sql}");
                used[n - 1] = true;
            }
        }
        assert!(
            used.iter().all(|u| *u),
            "every parameter is used: {}",
            st.sql
        );
        for kind in [
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::INT8,
            Type::BYTEA,
            Type::BYTEA_ARRAY,
        ] {
            assert!(
                st.params.iter().any(|p| p.pg_type() == kind),
                "{kind} covered"
            );
        }
    }
}
