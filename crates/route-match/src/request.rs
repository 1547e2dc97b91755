//! The request as the matcher sees it: a borrowed view, cheap to build per request.

use http::{HeaderMap, HeaderName, HeaderValue};

// === RequestHead ===

/// A borrowed view of the parts of a request that routing looks at.
///
/// Build one with [`RequestHead::new`] from plain strings, or convert an [`http::Request`] or
/// [`http::request::Parts`] with `From`. Nothing is copied.
///
/// ```
/// use portcullis_route_match::RequestHead;
///
/// let headers = [("x-user", "alice"), ("accept", "text/html")];
/// let req = RequestHead::new("GET", "https", "shop.example.com:8443", "/cart?id=7")
///     .with_header_list(&headers);
/// assert_eq!(req.path_without_query(), "/cart");
/// assert_eq!(req.query(), Some("id=7"));
///
/// let http_req = http::Request::get("https://shop.example.com/cart").body(()).unwrap();
/// let req = RequestHead::from(&http_req);
/// assert_eq!(req.authority(), "shop.example.com");
/// assert_eq!(req.scheme(), "https");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a str,
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    headers: Headers<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Headers<'a> {
    None,
    Map(&'a HeaderMap<HeaderValue>),
    List(&'a [(&'a str, &'a str)]),
}

impl<'a> RequestHead<'a> {
    /// A request with the given method, scheme, authority (`Host`, as sent, port included) and
    /// raw path (query and fragment included), and no other headers.
    pub fn new(method: &'a str, scheme: &'a str, authority: &'a str, path: &'a str) -> Self {
        Self {
            method,
            scheme,
            authority,
            path,
            headers: Headers::None,
        }
    }

    /// Uses `headers` as the request's headers (names are matched case-insensitively; a name
    /// listed several times is a repeated header).
    #[must_use]
    pub fn with_header_list(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = Headers::List(headers);
        self
    }

    /// Uses `headers` as the request's headers.
    #[must_use]
    pub fn with_header_map(mut self, headers: &'a HeaderMap<HeaderValue>) -> Self {
        self.headers = Headers::Map(headers);
        self
    }

    /// Replaces the scheme (for example when the URI carried none and the connection is TLS).
    #[must_use]
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Replaces the authority.
    #[must_use]
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        self.authority = authority;
        self
    }

    /// The method (`:method`).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The scheme (`:scheme`); empty when unknown.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// The authority as sent (`:authority`), port included.
    pub fn authority(&self) -> &'a str {
        self.authority
    }

    /// The raw path as sent (`:path`), query included.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The path with the query string and fragment removed: what path conditions see.
    pub fn path_without_query(&self) -> &'a str {
        match self.path.find(['?', '#']) {
            Some(end) => self.path.get(..end).unwrap_or(self.path),
            None => self.path,
        }
    }

    /// The raw query string (after `?`, before any `#`), if there is a `?`.
    pub fn query(&self) -> Option<&'a str> {
        let path = self.path.split('#').next().unwrap_or(self.path);
        path.split_once('?').map(|(_, q)| q)
    }

    /// The value of the first query parameter named `name` (raw, not decoded); `Some("")` for
    /// `?name` without `=`.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The values of a header (pseudo-headers included), in order. `key` is prepared once at
    /// build time.
    pub(crate) fn values<'s>(&'s self, key: &'s HeaderKey) -> Values<'s> {
        if let Some(p) = key.pseudo {
            let v = match p {
                Pseudo::Method => self.method,
                Pseudo::Scheme => self.scheme,
                Pseudo::Authority => self.authority,
                Pseudo::Path => self.path,
            };
            return Values::One(Some(v.as_bytes()));
        }
        if key.lower.starts_with(':') {
            // An unknown pseudo-header: never present.
            return Values::One(None);
        }
        match self.headers {
            Headers::None => Values::One(None),
            Headers::Map(map) => match &key.http {
                Some(name) => Values::Map(map.get_all(name).iter()),
                None => Values::One(None),
            },
            Headers::List(list) => Values::List {
                iter: list.iter(),
                name: &key.lower,
            },
        }
    }

    /// Every header as (name, value), pseudo-headers first; names as stored (any case). Used by
    /// the reference matcher, which looks headers up the slow, obvious way.
    pub(crate) fn all_headers(&self) -> Vec<(&'a str, &'a [u8])> {
        let mut out = vec![
            (":method", self.method.as_bytes()),
            (":scheme", self.scheme.as_bytes()),
            (":authority", self.authority.as_bytes()),
            (":path", self.path.as_bytes()),
        ];
        match self.headers {
            Headers::None => {}
            Headers::Map(map) => out.extend(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes()))),
            // Pseudo-headers come from the fields above, never from the list.
            Headers::List(list) => out.extend(
                list.iter()
                    .filter(|(k, _)| !k.starts_with(':'))
                    .map(|(k, v)| (*k, v.as_bytes())),
            ),
        }
        out
    }
}

impl<'a> From<&'a http::request::Parts> for RequestHead<'a> {
    /// Takes method, scheme and path from the URI, the authority from the URI or else the `Host`
    /// header, and the header map. A URI without a scheme gives an empty scheme (see
    /// [`RequestHead::with_scheme`]).
    fn from(parts: &'a http::request::Parts) -> Self {
        from_pieces(&parts.method, &parts.uri, &parts.headers)
    }
}

impl<'a, B> From<&'a http::Request<B>> for RequestHead<'a> {
    /// As for [`http::request::Parts`].
    fn from(req: &'a http::Request<B>) -> Self {
        from_pieces(req.method(), req.uri(), req.headers())
    }
}

fn from_pieces<'a>(
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a HeaderMap<HeaderValue>,
) -> RequestHead<'a> {
    let authority = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    RequestHead {
        method: method.as_str(),
        scheme: uri.scheme_str().unwrap_or(""),
        authority,
        path: uri.path_and_query().map_or("/", |pq| pq.as_str()),
        headers: Headers::Map(headers),
    }
}

// === HeaderKey ===

/// A header name prepared for lookups: lower-cased, with its pseudo-header or [`HeaderName`]
/// resolved once.
#[derive(Clone, Debug)]
pub(crate) struct HeaderKey {
    lower: Box<str>,
    pseudo: Option<Pseudo>,
    http: Option<HeaderName>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pseudo {
    Method,
    Scheme,
    Authority,
    Path,
}

impl HeaderKey {
    pub(crate) fn new(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        let pseudo = match lower.as_str() {
            ":method" => Some(Pseudo::Method),
            ":scheme" => Some(Pseudo::Scheme),
            ":authority" => Some(Pseudo::Authority),
            ":path" => Some(Pseudo::Path),
            _ => None,
        };
        // A name that is not a valid header name can never be in a `HeaderMap`.
        let http = HeaderName::from_bytes(lower.as_bytes()).ok();
        Self {
            lower: lower.into_boxed_str(),
            pseudo,
            http,
        }
    }
}

// === Values ===

/// The values of one header, in order.
#[derive(Debug)]
pub(crate) enum Values<'a> {
    One(Option<&'a [u8]>),
    Map(http::header::ValueIter<'a, HeaderValue>),
    List {
        iter: std::slice::Iter<'a, (&'a str, &'a str)>,
        name: &'a str,
    },
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Self::One(v) => v.take(),
            Self::Map(iter) => iter.next().map(HeaderValue::as_bytes),
            Self::List { iter, name } => iter
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes()),
        }
    }
}
