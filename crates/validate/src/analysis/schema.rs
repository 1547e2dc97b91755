//! `schema.ValidationAnalyzer.<Kind>`: validation as analysis messages.

use portcullis_model::{Document, Object};

use super::SchemaKind;
use super::messages::{
    SCHEMA_VALIDATION_ERROR, SCHEMA_WARNING, VIRTUAL_SERVICE_INEFFECTIVE_MATCH,
    VIRTUAL_SERVICE_UNREACHABLE_RULE,
};
use super::reachability;
use super::store::{Ctx, Target};
use crate::Severity;

/// Whether a validation warning is one of the reachability warnings, which analysis reports
/// with their own codes (IST0130, IST0131) from [`reachability`].
fn is_reachability_warning(message: &str) -> bool {
    message.contains(" not used (")
}

fn of_kind(doc: &Document, kind: SchemaKind) -> bool {
    matches!(
        (&doc.object, kind),
        (Object::Gateway(_), SchemaKind::Gateway)
            | (Object::VirtualService(_), SchemaKind::VirtualService)
            | (Object::DestinationRule(_), SchemaKind::DestinationRule)
            | (Object::ServiceEntry(_), SchemaKind::ServiceEntry)
    )
}

/// `schema.ValidationAnalyzer.<Kind>`.
pub(crate) fn validate(ctx: &mut Ctx<'_>, kind: SchemaKind) {
    let config = ctx.config;
    for doc in config.documents.iter().filter(|d| of_kind(d, kind)) {
        let found = crate::validate_document(&doc.object);
        for d in &found {
            let target = Target::Doc(doc, (!d.path.is_empty()).then(|| d.path.clone()));
            let text = if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            };
            match d.severity {
                Severity::Error => ctx.report(SCHEMA_VALIDATION_ERROR, &target, &[text.into()]),
                _ if is_reachability_warning(&d.message) => {}
                _ => ctx.report(SCHEMA_WARNING, &target, &[text.into()]),
            }
        }
        if let Object::VirtualService(vs) = &doc.object {
            for finding in reachability::analyze(&vs.spec) {
                let path = match finding.match_index {
                    Some(m) => format!("spec.{}[{}].match[{m}]", finding.protocol, finding.rule),
                    None => format!("spec.{}[{}]", finding.protocol, finding.rule),
                };
                let ty = if finding.unreachable {
                    VIRTUAL_SERVICE_UNREACHABLE_RULE
                } else {
                    VIRTUAL_SERVICE_INEFFECTIVE_MATCH
                };
                let args: Vec<_> = finding.args.into_iter().map(Into::into).collect();
                ctx.report(ty, &Target::Doc(doc, Some(path)), &args);
            }
        }
    }
}
