//! One pager for every list: `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list`, `[server] page_size` items a page.
//!
//! A cursor is opaque to clients: base64url of `LIST:OFFSET`. It is checked on the way back:
//! not base64, another list's cursor, or an offset past the end is invalid params (`-32602`),
//! never an empty page. Lists are computed per request from the gate in force (each principal
//! sees its own), so a reload between two pages may shift them; clients that need one
//! consistent list follow `notifications/tools/list_changed`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::ErrorData as McpError;
use rmcp::model::PaginatedRequestParams;

/// Which list a cursor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl List {
    fn tag(self) -> &'static str {
        match self {
            List::Tools => "tools",
            List::Prompts => "prompts",
            List::Resources => "resources",
            List::Templates => "templates",
        }
    }
}

fn cursor(list: List, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{offset}", list.tag()))
}

/// The offset `cursor` stands for in `list`, if it is one of `list`'s cursors.
fn offset(list: List, cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let raw = std::str::from_utf8(&raw).ok()?;
    let (tag, offset) = raw.split_once(':')?;
    if tag != list.tag() || offset.starts_with('+') {
        return None;
    }
    offset.parse().ok()
}

/// The page of `items` that `request`'s cursor points at (the first page without one), at most
/// `size` items, and the cursor of the next page if there is one.
pub fn page<T>(
    list: List,
    items: Vec<T>,
    request: Option<&PaginatedRequestParams>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match request.and_then(|r| r.cursor.as_deref()) {
        None => 0,
        Some(given) => offset(list, given)
            .filter(|&start| start <= items.len())
            .ok_or_else(|| McpError::invalid_params("invalid cursor", None))?,
    };
    let end = items.len().min(start.saturating_add(size.max(1)));
    let next = (end < items.len()).then(|| cursor(list, end));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cursor: Option<&str>) -> PaginatedRequestParams {
        let mut params = PaginatedRequestParams::default();
        params.cursor = cursor.map(str::to_owned);
        params
    }

    #[test]
    fn pages_follow_their_cursors_to_the_end() {
        let items: Vec<usize> = (0..205).collect();
        let (first, next) = page(List::Tools, items.clone(), None, 100).expect("first page");
        assert_eq!(first.len(), 100);
        let next = next.expect("a second page");
        assert!(!next.contains("100"), "opaque: {next}");
        let (second, next) =
            page(List::Tools, items.clone(), Some(&request(Some(&next))), 100).expect("second");
        assert_eq!(second[0], 100);
        let (last, next) =
            page(List::Tools, items, Some(&request(next.as_deref())), 100).expect("last");
        assert_eq!((last.len(), last[4], next), (5, 204, None));
    }

    #[test]
    fn a_list_that_fits_has_no_next_cursor() {
        let (all, next) = page(List::Prompts, vec![1, 2, 3], None, 3).expect("page");
        assert_eq!((all, next), (vec![1, 2, 3], None));
        let (none, next) = page(List::Prompts, Vec::<u8>::new(), None, 3).expect("page");
        assert_eq!((none.len(), next), (0, None));
    }

    #[test]
    fn a_cursor_that_is_not_this_lists_is_invalid_params() {
        let items = || vec![1, 2, 3, 4, 5];
        let other = cursor(List::Prompts, 2);
        let past = cursor(List::Tools, 6);
        let plus = URL_SAFE_NO_PAD.encode("tools:+2");
        for bad in ["x", "2", "-1", "", &other, &past, &plus] {
            let error = page(List::Tools, items(), Some(&request(Some(bad))), 2).expect_err(bad);
            assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{bad}");
        }
        // The end itself is a valid (empty) page.
        let end = cursor(List::Tools, 5);
        let (rest, next) = page(List::Tools, items(), Some(&request(Some(&end))), 2).expect("end");
        assert_eq!((rest.len(), next), (0, None));
    }
}
