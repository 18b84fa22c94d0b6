//! Guard for following a paginated S3 listing: a server that repeats or cycles its
//! continuation token (or marker), or whose listing never ends, is stopped with an error
//! instead of being followed forever.
//!
//! Every ListObjectsV2 listing (`list`, `walk`, `delete`, tail records) is followed by one
//! [`ObjectPages`]; every ListMultipartUploads listing (driver and writer resume) by
//! [`all_uploads`]; the writer's ListParts loop by its own [`PageGuard`].

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use crate::error::S3Error;
use crate::s3api::{ListPage, ListRequest, S3Api, UploadInfo};

/// Most pages one listing may have: 100 million keys at S3's 1,000 per page, far beyond any
/// registry prefix, while bounding what a server whose tokens never repeat can make us do.
/// The guard keeps every token it saw, so this also bounds its memory: at most 100,000
/// tokens (some tens of MB for tokens of a few hundred bytes; an honest listing of a million
/// keys keeps 1,000 of them).
pub(crate) const MAX_LIST_PAGES: usize = 100_000;

/// Longest token text quoted in an error (tokens are server-chosen, possibly huge).
const QUOTE_LIMIT: usize = 80;

/// Follows one listing's next-page tokens, refusing any that would loop.
///
/// Call [`next`](Self::next) with each page's next token before requesting that page. It
/// fails (an [`S3Error::malformed`] of the S3 operation, whose message names the driver
/// operation; the caller wraps it with the path) when the token was already seen (the
/// server repeats a token, or cycles A → B → A), when the `advances` order check given to
/// [`ordered`](Self::ordered) says it goes backwards, or after `max_pages` pages.
pub(crate) struct PageGuard<M> {
    /// The S3 operation, e.g. `ListObjectsV2`.
    operation: &'static str,
    /// The driver operation following it, e.g. `walk`.
    during: &'static str,
    max_pages: usize,
    pages: usize,
    seen: HashSet<M>,
    last: Option<M>,
    advances: Option<fn(&M, &M) -> bool>,
}

impl<M: Clone + Eq + Hash + fmt::Debug> PageGuard<M> {
    /// A guard for S3 `operation` done on behalf of driver operation `during`, with the
    /// [`MAX_LIST_PAGES`] cap and no order check (tokens are opaque).
    pub(crate) fn new(operation: &'static str, during: &'static str) -> Self {
        PageGuard {
            operation,
            during,
            max_pages: MAX_LIST_PAGES,
            pages: 1,
            seen: HashSet::new(),
            last: None,
            advances: None,
        }
    }

    /// Also requires `advances(previous, next)` of consecutive markers (for markers that
    /// S3 defines as ordered, such as ListMultipartUploads' key marker).
    pub(crate) fn ordered(mut self, advances: fn(&M, &M) -> bool) -> Self {
        self.advances = Some(advances);
        self
    }

    /// Changes the page cap (at least 1).
    pub(crate) fn max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// Accepts `next` as the token of the next page and returns it, or refuses it.
    pub(crate) fn next(&mut self, next: M) -> Result<M, S3Error> {
        let backwards = match (&self.last, self.advances) {
            (Some(prev), Some(advances)) => !advances(prev, &next),
            _ => false,
        };
        if backwards || self.seen.contains(&next) {
            return Err(S3Error::malformed(
                self.operation,
                format!(
                    "{}: listing does not advance: next token {} after {} pages{}",
                    self.during,
                    quote(&next),
                    self.pages,
                    if backwards {
                        " goes backwards"
                    } else {
                        " was already seen (the server repeats its tokens)"
                    },
                ),
            ));
        }
        if self.pages >= self.max_pages {
            return Err(S3Error::malformed(
                self.operation,
                format!(
                    "{}: listing did not end within {} pages",
                    self.during, self.max_pages
                ),
            ));
        }
        self.pages += 1;
        self.seen.insert(next.clone());
        self.last = Some(next.clone());
        Ok(next)
    }
}

/// `Debug` of a token, cut to [`QUOTE_LIMIT`] characters.
fn quote(token: &impl fmt::Debug) -> String {
    let text = format!("{token:?}");
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// One ListObjectsV2 listing followed page by page: the request of each next page (the
/// previous answer's continuation token) behind a [`PageGuard`], so a server that repeats or
/// cycles its tokens is stopped with an error.
pub(crate) struct ObjectPages {
    request: ListRequest,
    guard: PageGuard<String>,
}

impl ObjectPages {
    /// The listing that starts with `first` (its continuation token, if any, is dropped), on
    /// behalf of driver operation `during` (named in a looping server's error).
    pub(crate) fn new(during: &'static str, first: ListRequest) -> Self {
        ObjectPages {
            request: ListRequest {
                continuation_token: None,
                ..first
            },
            guard: PageGuard::new("ListObjectsV2", during),
        }
    }

    /// The request of the first page.
    pub(crate) fn first(&self) -> ListRequest {
        self.request.clone()
    }

    /// After a page that answered `next_token`: the request of the next page, `None` after
    /// the last page, or the guard's refusal of the token.
    pub(crate) fn after(
        &mut self,
        next_token: Option<String>,
    ) -> Result<Option<ListRequest>, S3Error> {
        let Some(token) = next_token else {
            return Ok(None);
        };
        self.request.continuation_token = Some(self.guard.next(token)?);
        Ok(Some(self.request.clone()))
    }

    /// Lists every page through `api`, handing each to `each` in order; a refused token is
    /// reported after the page that carried it was handed over.
    pub(crate) async fn for_each(
        mut self,
        api: &S3Api,
        mut each: impl FnMut(ListPage),
    ) -> Result<(), S3Error> {
        let mut next = Some(self.first());
        while let Some(request) = next {
            let page = api.list_objects_v2(request).await?;
            let token = page.next_token.clone();
            each(page);
            next = self.after(token)?;
        }
        Ok(())
    }
}

/// Every multipart upload whose key starts with `prefix`, following ListMultipartUploads to
/// its last page, on behalf of driver operation `during`. Keys come in order, so the key
/// marker may never go back; a repeated or cycling marker pair is an error, not a loop.
pub(crate) async fn all_uploads(
    api: &S3Api,
    prefix: &str,
    during: &'static str,
) -> Result<Vec<UploadInfo>, S3Error> {
    let mut uploads = Vec::new();
    let mut marker = None;
    let mut guard = PageGuard::new("ListMultipartUploads", during)
        .ordered(|prev: &(String, String), next| next.0 >= prev.0);
    loop {
        let page = api.list_multipart_uploads(prefix, marker.take()).await?;
        uploads.extend(page.uploads);
        match page.next {
            Some(next) => marker = Some(guard.next(next)?),
            None => return Ok(uploads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_distinct_tokens_and_refuses_repeats_and_cycles() {
        let mut g = PageGuard::new("ListObjectsV2", "list");
        assert_eq!(g.next("A".to_owned()).unwrap(), "A");
        assert_eq!(g.next("B".to_owned()).unwrap(), "B");
        let e = g.next("A".to_owned()).unwrap_err().to_string();
        assert!(e.contains("ListObjectsV2") && e.contains("list:"), "{e}");
        assert!(e.contains("already seen"), "{e}");
        let mut g = PageGuard::new("ListObjectsV2", "walk");
        g.next("T".to_owned()).unwrap();
        assert!(g.next("T".to_owned()).is_err());
    }

    #[test]
    fn ordered_markers_must_not_go_back_and_pages_are_capped() {
        let mut g = PageGuard::new("ListMultipartUploads", "uploads")
            .ordered(|a: &(String, u32), b| b.0 >= a.0);
        g.next(("b".to_owned(), 1)).unwrap();
        g.next(("b".to_owned(), 2)).unwrap();
        let e = g.next(("a".to_owned(), 3)).unwrap_err().to_string();
        assert!(e.contains("goes backwards"), "{e}");

        let mut g = PageGuard::new("ListObjectsV2", "walk").max_pages(3);
        g.next(1).unwrap();
        g.next(2).unwrap();
        let e = g.next(3).unwrap_err().to_string();
        assert!(e.contains("within 3 pages"), "{e}");
    }

    #[test]
    fn long_tokens_are_cut_in_messages() {
        let mut g = PageGuard::new("ListObjectsV2", "list");
        let t = "x".repeat(10_000);
        g.next(t.clone()).unwrap();
        let e = g.next(t).unwrap_err().to_string();
        assert!(e.len() < 400, "{e}");
    }
}
