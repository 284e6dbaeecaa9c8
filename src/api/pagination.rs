//! Keyset pagination shared by every listing (`n+1` fetch, cursors both ways), and the parsing
//! of `dir`, `next` and `prev`.

use serde_json::{json, Value};

use super::error::ApiError;
use super::query::Query;
use crate::store::{Direction, StoreError};

/// Which way the client asked to move from a cursor.
pub enum CursorArg {
    Next(String),
    Prev(String),
}

pub struct PageRequest {
    pub dir: Direction,
    pub limit: usize,
    pub cursor: Option<CursorArg>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    pub prev: Option<String>,
}

/// Reads `dir` (default desc) and the `next`/`prev` cursor positions of `resource`.
pub fn parse_request(query: &Query, resource: &str, limit: usize) -> Result<PageRequest, ApiError> {
    let dir = match query.get("dir") {
        None | Some("") | Some("desc") => Direction::Desc,
        Some("asc") => Direction::Asc,
        Some(_) => {
            return Err(ApiError::with_data(
                hyper::StatusCode::UNPROCESSABLE_ENTITY,
                "validation error",
                json!({"query.dir": "must be 'asc' or 'desc'"}),
            ))
        }
    };
    let next = query.get("next").filter(|c| !c.is_empty());
    let prev = query.get("prev").filter(|c| !c.is_empty());
    let cursor = match (next, prev) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "cannot specify both 'next' and 'prev' cursors",
            ))
        }
        (Some(c), None) => Some(CursorArg::Next(super::cursor::decode(resource, c)?)),
        (None, Some(c)) => Some(CursorArg::Prev(super::cursor::decode(resource, c)?)),
        (None, None) => None,
    };
    Ok(PageRequest { dir, limit, cursor })
}

/// Runs the keyset scan. `fetch(direction, after_position, n)` returns up to `n` items strictly
/// after the position in that direction; `position_of` gives an item's cursor position.
pub fn paginate<T>(
    request: &PageRequest,
    resource: &str,
    mut fetch: impl FnMut(Direction, Option<&str>, usize) -> Result<Vec<T>, ApiError>,
    position_of: impl Fn(&T) -> String,
) -> Result<Page<T>, ApiError> {
    let limit = request.limit;
    let cursor_of = |item: &T| super::cursor::encode(resource, &position_of(item));
    match &request.cursor {
        None => {
            let mut items = fetch(request.dir, None, limit + 1)?;
            let more = items.len() > limit;
            items.truncate(limit);
            let next = if more {
                items.last().map(cursor_of)
            } else {
                None
            };
            Ok(Page {
                items,
                next,
                prev: None,
            })
        }
        Some(CursorArg::Next(position)) => {
            let mut items = fetch(request.dir, Some(position), limit + 1)?;
            let more = items.len() > limit;
            items.truncate(limit);
            let next = if more {
                items.last().map(cursor_of)
            } else {
                None
            };
            let prev = items.first().map(cursor_of);
            Ok(Page { items, next, prev })
        }
        Some(CursorArg::Prev(position)) => {
            let mut items = fetch(request.dir.reverse(), Some(position), limit + 1)?;
            let more = items.len() > limit;
            items.truncate(limit);
            items.reverse();
            let next = items.last().map(cursor_of);
            let prev = if more {
                items.first().map(cursor_of)
            } else {
                None
            };
            Ok(Page { items, next, prev })
        }
    }
}

/// The `pagination` object of a listing response.
pub fn pagination_json(
    order_by: &str,
    request: &PageRequest,
    next: &Option<String>,
    prev: &Option<String>,
) -> Value {
    json!({
        "order_by": order_by,
        "dir": match request.dir { Direction::Asc => "asc", Direction::Desc => "desc" },
        "limit": request.limit,
        "next": next,
        "prev": prev,
    })
}

impl From<StoreError> for Box<ApiError> {
    fn from(e: StoreError) -> Self {
        Box::new(ApiError::from(e))
    }
}
