//! The configuration indexed by kind, and the reporter every analyzer writes to.

use std::collections::{BTreeMap, HashSet};

use portcullis_model::kube::{Secret, ServiceSpec};
use portcullis_model::{
    DestinationRule, Document, Gateway, Object, ObjectMeta, ServiceEntry, SkippedDocument,
    VirtualService,
};
use serde_json::Value;

use super::Config;
use super::messages::{Arg, Message, MessageType, ResourceRef, SourceRef, fill};

/// One typed resource of the configuration.
#[derive(Debug)]
pub(crate) struct Item<'a, S> {
    pub(crate) doc: &'a Document,
    pub(crate) meta: &'a ObjectMeta,
    pub(crate) spec: &'a S,
    pub(crate) status: Option<&'a Value>,
}

impl<S> Clone for Item<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Item<'_, S> {}

impl<'a, S> Item<'a, S> {
    /// The namespace as written (possibly empty).
    pub(crate) fn ns(&self) -> &'a str {
        &self.meta.namespace
    }

    /// The name.
    pub(crate) fn name(&self) -> &'a str {
        &self.meta.name
    }

    /// `namespace/name` or `name`.
    pub(crate) fn full_name(&self) -> String {
        if self.meta.namespace.is_empty() {
            self.meta.name.clone()
        } else {
            format!("{}/{}", self.meta.namespace, self.meta.name)
        }
    }

    /// The target for a message about this resource, located at `path` when given.
    pub(crate) fn at(&self, path: &str) -> Target<'a> {
        Target::Doc(self.doc, Some(path.to_owned()))
    }

    /// The target for a message about this resource.
    pub(crate) fn target(&self) -> Target<'a> {
        Target::Doc(self.doc, None)
    }
}

/// A document of another kind, read from its raw value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw<'a> {
    pub(crate) doc: &'a SkippedDocument,
}

impl<'a> Raw<'a> {
    pub(crate) fn value(&self) -> &'a Value {
        &self.doc.value
    }

    pub(crate) fn ns(&self) -> &'a str {
        self.doc
            .value
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub(crate) fn name(&self) -> &'a str {
        &self.doc.name
    }

    pub(crate) fn group(&self) -> &'a str {
        self.doc
            .api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        string_map(self.doc.value.get("metadata").and_then(|m| m.get("labels")))
    }

    pub(crate) fn target(&self) -> Target<'a> {
        Target::Skipped(self.doc)
    }
}

/// A map of strings from a JSON object (non-string values are skipped).
pub(crate) fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What a message is about.
#[derive(Clone, Debug)]
pub(crate) enum Target<'a> {
    /// A typed document, and optionally the field path the message points at.
    Doc(&'a Document, Option<String>),
    /// A document of another kind.
    Skipped(&'a SkippedDocument),
}

/// The configuration, indexed by kind, plus the messages reported so far.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) gateways: Vec<Item<'a, Gateway>>,
    pub(crate) virtual_services: Vec<Item<'a, VirtualService>>,
    pub(crate) destination_rules: Vec<Item<'a, DestinationRule>>,
    pub(crate) service_entries: Vec<Item<'a, ServiceEntry>>,
    pub(crate) services: Vec<Item<'a, ServiceSpec>>,
    pub(crate) pods: Vec<Item<'a, Value>>,
    pub(crate) secrets: Vec<(&'a Document, &'a Secret)>,
    pub(crate) skipped: Vec<Raw<'a>>,
    pub(crate) analyzer: &'static str,
    out: Vec<Message>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(config: &'a Config) -> Self {
        let mut ctx = Self {
            config,
            gateways: Vec::new(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            service_entries: Vec::new(),
            services: Vec::new(),
            pods: Vec::new(),
            secrets: Vec::new(),
            skipped: config.skipped.iter().map(|doc| Raw { doc }).collect(),
            analyzer: "",
            out: Vec::new(),
        };
        for doc in &config.documents {
            match &doc.object {
                Object::Gateway(r) => ctx.gateways.push(item(doc, r)),
                Object::VirtualService(r) => ctx.virtual_services.push(item(doc, r)),
                Object::DestinationRule(r) => ctx.destination_rules.push(item(doc, r)),
                Object::ServiceEntry(r) => ctx.service_entries.push(item(doc, r)),
                Object::Service(r) => ctx.services.push(item(doc, r)),
                Object::Pod(r) => ctx.pods.push(item(doc, r)),
                Object::Secret(s) => ctx.secrets.push((doc, s)),
                _ => {}
            }
        }
        ctx
    }

    /// The skipped documents of a kind (and API group, when given).
    pub(crate) fn raw_of(&self, kind: &str, group: Option<&str>) -> Vec<Raw<'a>> {
        self.skipped
            .iter()
            .filter(|r| r.doc.kind == kind && group.is_none_or(|g| r.group() == g))
            .copied()
            .collect()
    }

    /// Records a message.
    pub(crate) fn report(&mut self, ty: MessageType, target: &Target<'a>, args: &[Arg]) {
        self.report_related(ty, target, args, Vec::new());
    }

    /// Records a message that also points at other places.
    pub(crate) fn report_related(
        &mut self,
        ty: MessageType,
        target: &Target<'a>,
        args: &[Arg],
        related: Vec<SourceRef>,
    ) {
        let (resource, file, line) = match target {
            Target::Doc(doc, path) => {
                let meta = doc.object.metadata();
                let line = path
                    .as_deref()
                    .and_then(|p| doc.source_map.key(p).or_else(|| doc.source_map.nearest(p)))
                    .map_or(doc.source.location.line, |l| l.line);
                (
                    ResourceRef {
                        kind: doc.object.kind().as_str().to_owned(),
                        namespace: meta.namespace.clone(),
                        name: meta.name.clone(),
                    },
                    doc.source.file.clone(),
                    line,
                )
            }
            Target::Skipped(doc) => (
                ResourceRef {
                    kind: doc.kind.clone(),
                    namespace: Raw { doc }.ns().to_owned(),
                    name: doc.name.clone(),
                },
                doc.source.file.clone(),
                doc.source.location.line,
            ),
        };
        self.out.push(Message {
            message_type: ty,
            code: ty.code,
            name: ty.name,
            level: ty.level,
            resource,
            text: fill(ty.template, args),
            file: Some(file),
            line: Some(line),
            related,
            analyzer: self.analyzer,
        });
    }

    /// The messages in the order reported, without repeats: two analyzers reporting the same
    /// code, resource and text (IST0101 for a Gateway selector that selects no pod, from the
    /// ingress-port and secret analyzers) give one message, the first.
    pub(crate) fn finish(self) -> Vec<Message> {
        let mut seen = HashSet::new();
        self.out
            .into_iter()
            .filter(|m| seen.insert((m.code, m.resource.clone(), m.text.clone())))
            .collect()
    }
}

fn item<'a, S>(doc: &'a Document, r: &'a portcullis_model::Resource<S>) -> Item<'a, S> {
    Item {
        doc,
        meta: &r.metadata,
        spec: &r.spec,
        status: r.status.as_ref(),
    }
}

/// A place in a document, for messages that name other places.
pub(crate) fn source_ref(doc: &Document, path: &str, what: String) -> SourceRef {
    let line = doc
        .source_map
        .key(path)
        .or_else(|| doc.source_map.nearest(path))
        .map_or(doc.source.location.line, |l| l.line);
    SourceRef {
        what,
        file: doc.source.file.clone(),
        line: Some(line),
    }
}
