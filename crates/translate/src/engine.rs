//! The bridge to `portcullis-proxy-core`: a translated route's action as the engine's
//! [`portcullis_proxy_core::RouteAction`], ready for `decide`.

use portcullis_proxy_core as pc;

use crate::plan::{
    CorsPolicy, Fault, HeaderOps, HttpRoute, OriginMatch, PathRewrite, RedirectPath, RetryPolicy,
    RouteAction,
};

fn header_ops(ops: &HeaderOps) -> Result<pc::HeaderOps, pc::InvalidAction> {
    let mut out = pc::HeaderOps::new();
    for name in &ops.remove {
        out = out.try_remove(name)?;
    }
    for (k, v) in &ops.set {
        out = out.try_set(k, v)?;
    }
    for (k, v) in &ops.add {
        out = out.try_add(k, v)?;
    }
    Ok(out)
}

fn matched_kind(prefix: Option<&String>) -> pc::PathMatchKind {
    match prefix {
        Some(p) => pc::PathMatchKind::Prefix(p.clone()),
        None => pc::PathMatchKind::Regex,
    }
}

fn fault(f: &Fault) -> Result<pc::Fault, pc::InvalidAction> {
    let mut out = pc::Fault::new();
    if let Some((d, pm)) = f.delay {
        out = out.with_delay(pc::FaultDelay::new(
            d,
            Some(pc::FractionalPercent::from_per_million(pm)),
        ));
    }
    if let Some(a) = &f.abort {
        let pct = Some(pc::FractionalPercent::from_per_million(a.per_million));
        if let Some(code) = a.grpc_status {
            out = out.with_abort(pc::FaultAbort::grpc(code, pct));
        } else if let Some(status) = a.http_status {
            let status = u16::try_from(status).unwrap_or(500);
            out = out.with_abort(pc::FaultAbort::http(status, pct)?);
        }
    }
    Ok(out)
}

fn cors(c: &CorsPolicy) -> Result<pc::Cors, pc::InvalidAction> {
    let mut out = pc::Cors::new();
    for o in &c.allow_origins {
        out = out.allow_origin(match o {
            OriginMatch::Exact(e) => pc::OriginMatch::exact(e.clone()),
            OriginMatch::Prefix(p) => pc::OriginMatch::prefix(p.clone()),
            OriginMatch::Regex(r) => pc::OriginMatch::regex(r)?,
        });
    }
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    out = out
        .allow_methods(split(&c.allow_methods))?
        .allow_headers(split(&c.allow_headers))?
        .expose_headers(split(&c.expose_headers))?
        .allow_credentials(c.allow_credentials)
        .unmatched_preflights(if c.ignore_unmatched_preflights {
            pc::UnmatchedPreflights::Ignore
        } else {
            pc::UnmatchedPreflights::Forward
        });
    if let Some(age) = c.max_age.as_deref().and_then(|a| a.parse::<u64>().ok()) {
        out = out.max_age(std::time::Duration::from_secs(age));
    }
    Ok(out)
}

fn retry(r: &RetryPolicy) -> pc::RetryPolicy {
    let retry_on = if r.retriable_status_codes.is_empty() {
        r.retry_on.clone()
    } else {
        let codes: Vec<String> = r
            .retriable_status_codes
            .iter()
            .map(ToString::to_string)
            .collect();
        format!("{},{}", r.retry_on, codes.join(","))
    };
    let attempts = i32::try_from(r.num_retries).unwrap_or(i32::MAX);
    let base = pc::RetryPolicy::from_istio(
        attempts,
        r.per_try_timeout,
        &retry_on,
        r.retry_remote_localities,
    )
    .unwrap_or_else(pc::RetryPolicy::istio_default);
    let mut out = base.with_previous_hosts(!r.retry_host_predicate.is_empty());
    if let Some(b) = r.backoff_base_interval {
        out = out.with_backoff(b);
    }
    out
}

impl HttpRoute {
    /// This route's action as a `portcullis-proxy-core` action, for
    /// [`portcullis_proxy_core::decide`].
    ///
    /// # Errors
    /// When a header name or value, a regex or a status code is not acceptable to the engine.
    pub fn to_proxy_core(&self) -> Result<pc::RouteAction, pc::InvalidAction> {
        let response = header_ops(&self.response_headers)?;
        let f = self.fault.as_ref().map(fault).transpose()?;
        let c = self.cors.as_ref().map(cors).transpose()?;
        let action: pc::RouteAction = match &self.action {
            RouteAction::Forward(fwd) => {
                let mut dests = Vec::new();
                for d in &fwd.destinations {
                    let mut dest = pc::Destination::new(d.cluster.as_str(), d.weight);
                    if fwd.weighted {
                        dest = dest
                            .with_request_headers(header_ops(&d.request_headers)?)
                            .with_response_headers(header_ops(&d.response_headers)?);
                        if let Some(h) = &d.host_rewrite {
                            dest = dest.with_authority(h.clone());
                        }
                    }
                    dests.push(dest);
                }
                if !fwd.weighted {
                    // A single destination: its weight is ignored.
                    dests.truncate(1);
                }
                let mut a = pc::ForwardAction::new(dests)?
                    .with_request_headers(header_ops(&self.request_headers)?)
                    .with_response_headers(response)
                    .with_timeout(self.timeout)
                    .with_max_grpc_timeout(Some(self.max_grpc_timeout))
                    .with_retry_policy(self.retry_policy.as_ref().map(retry));
                if let Some(h) = &fwd.host_rewrite {
                    a = a.with_authority_rewrite(h.clone());
                }
                match &fwd.path_rewrite {
                    Some(PathRewrite::Prefix {
                        matched_prefix,
                        replacement,
                    }) => {
                        a = a.with_path_rewrite(pc::PathRewrite::Prefix {
                            matched: matched_kind(matched_prefix.as_ref()),
                            replacement: replacement.clone(),
                        });
                    }
                    Some(PathRewrite::Regex {
                        pattern,
                        substitution,
                    }) => {
                        a = a.with_path_rewrite(pc::PathRewrite::Regex(pc::RegexRewrite::new(
                            pattern,
                            substitution,
                        )?));
                    }
                    None => {}
                }
                for m in &self.mirrors {
                    a = a.with_mirror(pc::Mirror::new(
                        m.cluster.as_str(),
                        Some(pc::FractionalPercent::from_per_million(m.per_million)),
                    ));
                }
                if let Some(f) = f {
                    a = a.with_fault(f);
                }
                if let Some(c) = c {
                    a = a.with_cors(c);
                }
                a.into()
            }
            RouteAction::Redirect(r) => {
                let mut a = pc::RedirectAction::new(r.status)?.with_response_headers(response);
                if let Some(s) = &r.scheme {
                    a = a.with_scheme(s.clone());
                }
                if let Some(h) = &r.host {
                    a = a.with_authority(h.clone());
                }
                if let Some(p) = r.port.and_then(|p| u16::try_from(p).ok()) {
                    a = a.with_port(pc::RedirectPort::Port(p));
                }
                a = a.with_path(match &r.path {
                    RedirectPath::Keep => pc::RedirectPath::Keep,
                    RedirectPath::Replace(u) => pc::RedirectPath::Replace(u.clone()),
                    RedirectPath::Prefix {
                        matched_prefix,
                        replacement,
                    } => pc::RedirectPath::PrefixRewrite {
                        matched: matched_kind(matched_prefix.as_ref()),
                        replacement: replacement.clone(),
                    },
                });
                if let Some(f) = f {
                    a = a.with_fault(f);
                }
                if let Some(c) = c {
                    a = a.with_cors(c);
                }
                a.into()
            }
            RouteAction::DirectResponse(d) => {
                let body = d.body.clone().map(bytes::Bytes::from);
                let mut a =
                    pc::DirectResponseAction::new(d.status, body)?.with_response_headers(response);
                if let Some(f) = f {
                    a = a.with_fault(f);
                }
                if let Some(c) = c {
                    a = a.with_cors(c);
                }
                a.into()
            }
        };
        Ok(action)
    }
}
