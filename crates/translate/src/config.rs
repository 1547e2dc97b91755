//! The configuration being translated: the Istio resources, indexed and ordered as pilot
//! orders them.

use std::ops::Deref;

use portcullis_model::{
    DEFAULT_NAMESPACE, DestinationRule, Edition, Gateway, Loaded, Object, Resource, ServiceEntry,
    VirtualService,
};

/// The Istio networking resources of one configuration.
///
/// Resources without a namespace are placed in `default`. Order follows Istio's
/// `configCompareByCreationTime`: creation timestamp (missing = oldest), then name, then
/// namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Gateways.
    pub gateways: Vec<Resource<Gateway>>,
    /// VirtualServices.
    pub virtual_services: Vec<Resource<VirtualService>>,
    /// DestinationRules.
    pub destination_rules: Vec<Resource<DestinationRule>>,
    /// ServiceEntries (also added to the service registry by [`crate::translate`]).
    pub service_entries: Vec<Resource<ServiceEntry>>,
}

impl Config {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The networking resources among the documents of one load (other kinds are ignored).
    pub fn from_loaded(loaded: &Loaded) -> Self {
        Self::from_objects(loaded.documents().iter().map(|d| &d.object))
    }

    /// The networking resources among objects (other kinds are ignored).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Self {
        let mut config = Self::new();
        for object in objects {
            config.push(object.clone());
        }
        config
    }

    /// Adds an object (non-networking kinds are ignored).
    pub fn push(&mut self, object: Object) {
        match object {
            Object::Gateway(r) => self.gateways.push(with_namespace(r)),
            Object::VirtualService(r) => self.virtual_services.push(with_namespace(r)),
            Object::DestinationRule(r) => self.destination_rules.push(with_namespace(r)),
            Object::ServiceEntry(r) => self.service_entries.push(with_namespace(r)),
            _ => {}
        }
    }
}

/// The resources one translation reads: borrowed from a [`Config`], or from loaded objects
/// without copying them (copying ten thousand VirtualServices cost a third as much as
/// translating them).
#[derive(Debug, Default)]
pub(crate) struct Resources<'a> {
    pub(crate) gateways: Vec<Held<'a, Resource<Gateway>>>,
    pub(crate) virtual_services: Vec<Held<'a, Resource<VirtualService>>>,
    pub(crate) destination_rules: Vec<Held<'a, Resource<DestinationRule>>>,
    pub(crate) service_entries: Vec<Held<'a, Resource<ServiceEntry>>>,
    /// For resources from a [`Loaded`]: the edition of each VirtualService's document (same
    /// index as `virtual_services`); empty otherwise.
    pub(crate) virtual_service_editions: Vec<Edition>,
    /// For resources from a [`Loaded`]: the editions of the other networking resources'
    /// documents, in load order; empty otherwise.
    pub(crate) other_editions: Vec<Edition>,
}

impl<'a> Resources<'a> {
    /// A configuration's resources, as they are.
    pub(crate) fn of_config(config: &'a Config) -> Self {
        Self {
            gateways: config.gateways.iter().map(Held::Borrowed).collect(),
            virtual_services: config.virtual_services.iter().map(Held::Borrowed).collect(),
            destination_rules: config
                .destination_rules
                .iter()
                .map(Held::Borrowed)
                .collect(),
            service_entries: config.service_entries.iter().map(Held::Borrowed).collect(),
            ..Self::default()
        }
    }

    /// The networking resources among objects, as [`Config::from_objects`] takes them.
    pub(crate) fn of_objects(objects: impl IntoIterator<Item = &'a Object>) -> Self {
        let mut resources = Self::default();
        for object in objects {
            resources.push(object);
        }
        resources
    }

    /// The networking resources of a load, as [`Resources::of_objects`] takes them, with the
    /// editions of their documents.
    pub(crate) fn of_loaded(loaded: &'a Loaded) -> Self {
        let documents = loaded.documents();
        let virtual_services = documents
            .iter()
            .filter(|d| matches!(d.object, Object::VirtualService(_)))
            .count();
        let mut resources = Self::default();
        // Reserved once: a resource is large, and a list grown by doubling copies it each time.
        resources.virtual_services.reserve_exact(virtual_services);
        resources
            .virtual_service_editions
            .reserve_exact(virtual_services);
        for (doc, edition) in documents.iter().zip(loaded.editions()) {
            resources.push(&doc.object);
            match doc.object {
                Object::VirtualService(_) => resources.virtual_service_editions.push(*edition),
                Object::Gateway(_) | Object::DestinationRule(_) | Object::ServiceEntry(_) => {
                    resources.other_editions.push(*edition);
                }
                _ => {}
            }
        }
        resources
    }

    /// The edition of the `i`th VirtualService's document, when known.
    pub(crate) fn virtual_service_edition(&self, i: usize) -> Option<Edition> {
        self.virtual_service_editions.get(i).copied()
    }

    /// Adds a networking resource (other kinds are ignored): only an object without a
    /// namespace is copied, to be given one.
    fn push(&mut self, object: &'a Object) {
        fn take<S: Clone>(r: &Resource<S>) -> Held<'_, Resource<S>> {
            if r.metadata.namespace.is_empty() {
                Held::Owned(Box::new(with_namespace(r.clone())))
            } else {
                Held::Borrowed(r)
            }
        }
        match object {
            Object::Gateway(r) => self.gateways.push(take(r)),
            Object::VirtualService(r) => self.virtual_services.push(take(r)),
            Object::DestinationRule(r) => self.destination_rules.push(take(r)),
            Object::ServiceEntry(r) => self.service_entries.push(take(r)),
            _ => {}
        }
    }
}

/// A resource borrowed, or owned on the heap: a pointer either way, where a `Cow` would be
/// as large as the resource (a list of ten thousand of them was five megabytes written, and
/// faulted in, on every translation).
#[derive(Debug)]
pub(crate) enum Held<'a, T> {
    Borrowed(&'a T),
    Owned(Box<T>),
}

impl<T> Deref for Held<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Held::Borrowed(r) => r,
            Held::Owned(r) => r,
        }
    }
}

/// Objects the [`Loader`](portcullis_model::Loader) read already have a namespace; objects built
/// in code without one get [`DEFAULT_NAMESPACE`], as the loader would give them.
fn with_namespace<S>(mut r: Resource<S>) -> Resource<S> {
    if r.metadata.namespace.is_empty() {
        DEFAULT_NAMESPACE.clone_into(&mut r.metadata.namespace);
    }
    r
}

/// Istio's `configCompareByCreationTime` key.
pub(crate) fn creation_order_key<S>(r: &Resource<S>) -> (i128, &str, &str) {
    let ts = r
        .metadata
        .creation_timestamp
        .as_deref()
        .and_then(parse_rfc3339_seconds)
        .unwrap_or(i128::MIN);
    (ts, r.metadata.name.as_str(), r.metadata.namespace.as_str())
}

/// Seconds (times 10^9 plus nanos) since the epoch for an RFC 3339 timestamp, enough to order
/// timestamps.
fn parse_rfc3339_seconds(s: &str) -> Option<i128> {
    // Each field fits an i64, so that the arithmetic below, in i128, cannot overflow whatever
    // a document writes.
    let num = |field: &str| field.parse::<i64>().ok().map(i128::from);
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year = num(d.next()?)?;
    let month = num(d.next()?)?;
    let day = num(d.next()?)?;
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0i128)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = off.get(1..)?;
        let (h, m) = off.split_once(':').unwrap_or((off, "0"));
        let secs = num(h)? * 3600 + num(m)? * 60;
        (t, sign * secs)
    } else {
        (rest, 0)
    };
    let mut t = time.splitn(3, ':');
    let hour = num(t.next()?)?;
    let minute = num(t.next()?)?;
    let sec_str = t.next().unwrap_or("0");
    let (sec, frac) = sec_str.split_once('.').unwrap_or((sec_str, ""));
    let sec = num(sec)?;
    let mut nanos: i128 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let digit = i128::from(c.to_digit(10)?);
        nanos += digit * 10i128.pow(8 - u32::try_from(i).ok()?);
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + sec - offset_secs;
    Some(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_rfc3339_seconds;

    /// Fields as large as a document can write are ordered (or refused) without overflowing.
    #[test]
    fn huge_fields_do_not_overflow() {
        let huge = i64::MAX;
        for ts in [
            format!("{huge}-12-31T23:59:59Z"),
            format!("-{huge}-01-01T00:00:00Z"),
            format!("2020-{huge}-{huge}T{huge}:{huge}:{huge}.999999999+{huge}:{huge}"),
            format!("2020-01-01T00:00:00-{huge}:{huge}"),
            "9999999999999999999999999999999999999-01-01T00:00:00Z".to_owned(),
            "2020-01-01T99999999999999999999999999999999999:00:00Z".to_owned(),
        ] {
            let _ = parse_rfc3339_seconds(&ts);
        }
        assert!(
            parse_rfc3339_seconds(&format!("{huge}-01-01T00:00:00Z"))
                > parse_rfc3339_seconds("2020-01-01T00:00:00Z")
        );
    }

    #[test]
    fn timestamps_order() {
        let a = parse_rfc3339_seconds("2010-01-01T00:00:00Z").unwrap();
        let b = parse_rfc3339_seconds("2020-01-01T00:00:00Z").unwrap();
        let c = parse_rfc3339_seconds("2020-01-01T01:00:00+02:00").unwrap();
        assert!(a < b);
        assert!(c < b);
        assert_eq!(
            parse_rfc3339_seconds("1970-01-01T00:00:01Z"),
            Some(1_000_000_000)
        );
    }
}
