//! Building one read query from a client's `{filter, sort, limit, offset, columns}`: every
//! identifier must name a real column of the table (from the catalogue) and is always quoted;
//! every value is a bound parameter, cast to its column's type inside the statement. Nothing a
//! client sends becomes SQL text except identifiers that the catalogue vouches for.

use serde_json::{Map, Value};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
pub const MAX_OFFSET: i64 = 1_000_000;
pub const MAX_IN_VALUES: usize = 1000;

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    /// The columns of each row, in order.
    pub columns: Vec<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One request body, as sent.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    #[serde(default)]
    pub filter: Map<String, Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    pub sort: Option<Value>,
    /// `null` is the default, as documented.
    pub limit: Option<Value>,
    pub offset: Option<Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    pub columns: Option<Vec<String>>,
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

/// The text a JSON scalar is bound as (then cast to the column's type by PostgreSQL).
fn scalar_text(v: &Value, field: &str) -> Result<String, Refused> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(Refused(format!(
            "{field}: null is not a value; use {{\"is_null\": true}}"
        ))),
        _ => Err(Refused(format!(
            "{field}: must be a string, number or boolean"
        ))),
    }
}

/// How a column's value becomes JSON in the result: numbers and booleans as JSON, numeric as a
/// string (exact), timestamps as RFC 3339 (UTC), json as JSON, bytea as base64, the rest as text.
fn select_expr(c: &Column) -> String {
    let q = quote(&c.name);
    match c.udt.as_str() {
        "bool" | "int2" | "int4" | "int8" | "float4" | "float8" | "json" | "jsonb"
        | "timestamptz" | "date" => format!("to_jsonb({q})"),
        "timestamp" => format!("to_jsonb({q} AT TIME ZONE 'UTC')"),
        "bytea" => format!("to_jsonb(encode({q}, 'base64'))"),
        _ => format!("to_jsonb({q}::text)"),
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
    let mut params: Vec<Param> = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
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
    let mut conditions = Vec::new();
    for (name, spec) in &body.filter {
        let col = column(table, name, "filter")?;
        let q = quote(&col.name);
        let ty = quote(&col.udt);
        let field = format!("filter.{}", col.name);
        let ops: Vec<(&str, &Value)> = match spec {
            Value::Object(m) if !m.is_empty() => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            Value::Object(_) => return Err(Refused(format!("{field}: an empty condition"))),
            other => vec![("eq", other)],
        };
        for (op, v) in ops {
            let cond = match op {
                "eq" | "neq" | "gt" | "gte" | "lt" | "lte" => {
                    let sym = match op {
                        "eq" => "=",
                        "neq" => "<>",
                        "gt" => ">",
                        "gte" => ">=",
                        "lt" => "<",
                        _ => "<=",
                    };
                    let p = bind(Param::Text(scalar_text(v, &field)?));
                    format!("{q} {sym} CAST({p}::text AS {ty})")
                }
                "like" | "ilike" => {
                    let Value::String(s) = v else {
                        return Err(Refused(format!("{field}: {op} takes a string pattern")));
                    };
                    let p = bind(Param::Text(s.clone()));
                    format!("CAST({q} AS text) {} {p}::text", op.to_uppercase())
                }
                "in" => {
                    let Value::Array(items) = v else {
                        return Err(Refused(format!("{field}: in takes a list")));
                    };
                    if items.is_empty() || items.len() > MAX_IN_VALUES {
                        return Err(Refused(format!(
                            "{field}: in takes 1 to {MAX_IN_VALUES} values"
                        )));
                    }
                    let texts = items
                        .iter()
                        .map(|i| scalar_text(i, &field))
                        .collect::<Result<Vec<_>, _>>()?;
                    let p = bind(Param::TextArray(texts));
                    format!("{q} = ANY(CAST({p}::text[] AS {ty}[]))")
                }
                "is_null" => match v {
                    Value::Bool(true) => format!("{q} IS NULL"),
                    Value::Bool(false) => format!("{q} IS NOT NULL"),
                    _ => return Err(Refused(format!("{field}: is_null takes true or false"))),
                },
                _ => {
                    return Err(Refused(format!(
                        "{field}: unknown operator; use eq, neq, gt, gte, lt, lte, like, ilike, in or is_null"
                    )))
                }
            };
            conditions.push(cond);
        }
    }
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
    let mut sql = format!("SELECT {row} FROM {}.{}", quote(schema), quote(table_name));
    if !conditions.is_empty() {
        sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    // One more row than asked tells whether another page follows.
    let lim = bind(Param::Int(limit + 1));
    let off = bind(Param::Int(offset));
    sql.push_str(&format!(" LIMIT {lim}::int8 OFFSET {off}::int8"));
    Ok(Statement {
        sql,
        params,
        columns: selected.iter().map(|c| c.name.clone()).collect(),
        limit,
        offset,
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
}
