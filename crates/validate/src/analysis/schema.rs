//! `schema.ValidationAnalyzer.<Kind>`: validation as analysis messages.

use portcullis_model::{Document, Object};

use super::SchemaKind;
use super::messages::{
    SCHEMA_VALIDATION_ERROR, SCHEMA_WARNING, VIRTUAL_SERVICE_INEFFECTIVE_MATCH,
    VIRTUAL_SERVICE_UNREACHABLE_RULE,
};
use super::store::{Ctx, Target};
use crate::virtual_service::{Reachability, ReachabilityKind, reachability};
use crate::{Diagnostic, Severity};

fn of_kind(doc: &Document, kind: SchemaKind) -> bool {
    matches!(
        (&doc.object, kind),
        (Object::Gateway(_), SchemaKind::Gateway)
            | (Object::VirtualService(_), SchemaKind::VirtualService)
            | (Object::DestinationRule(_), SchemaKind::DestinationRule)
            | (Object::ServiceEntry(_), SchemaKind::ServiceEntry)
    )
}

/// Whether a validation warning is one of the reachability `findings`, which analysis reports
/// with their own codes (IST0130, IST0131).
fn is_reachability_warning(d: &Diagnostic, findings: &[Reachability]) -> bool {
    findings
        .iter()
        .any(|f| f.warning_path("spec") == d.path && f.message() == d.message)
}

/// `schema.ValidationAnalyzer.<Kind>`.
pub(crate) fn validate(ctx: &mut Ctx<'_>, kind: SchemaKind) {
    let config = ctx.config;
    for doc in config.documents.iter().filter(|d| of_kind(d, kind)) {
        let findings = match &doc.object {
            Object::VirtualService(vs) => reachability(&vs.spec),
            _ => Vec::new(),
        };
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
                _ if is_reachability_warning(d, &findings) => {}
                _ => ctx.report(SCHEMA_WARNING, &target, &[text.into()]),
            }
        }
        for finding in &findings {
            let ty = match finding.kind {
                ReachabilityKind::Unreachable { .. } => VIRTUAL_SERVICE_UNREACHABLE_RULE,
                ReachabilityKind::Ineffective { .. } => VIRTUAL_SERVICE_INEFFECTIVE_MATCH,
            };
            let args: Vec<_> = finding.args().into_iter().map(Into::into).collect();
            ctx.report(ty, &Target::Doc(doc, Some(finding.path("spec"))), &args);
        }
    }
}
