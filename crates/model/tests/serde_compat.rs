//! The model's serde implementations are plain: the same types work through `serde_yaml` and
//! `serde_json` directly, so users of either keep working without the loader.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use portcullis_model::{DestinationRule, Loader, Object, Resource, VirtualService};

const VIRTUAL_SERVICE: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  gateways: [bookinfo-gateway, mesh]
  http:
  - name: jason
    match:
    - headers:
        end-user: {exact: jason}
      uri: {prefix: /reviews}
      ignoreUriCase: true
    fault:
      delay:
        fixedDelay: 7s
        percentage: {value: 10.5}
      abort:
        httpStatus: 503
        percentage: {value: 1}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 80
    - destination: {host: reviews, subset: v3}
      weight: 20
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 1.5s
  - redirect: {uri: /v1/bookRatings, authority: newratings.default.svc.cluster.local, derivePort: FROM_REQUEST_PORT}
";

const DESTINATION_RULE: &str = "\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, ttl: 0s}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
";

/// What the loader reads, without the one thing it adds to what plain serde reads: the default
/// namespace of a document that names none.
fn loaded<T: Clone>(text: &str, pick: impl Fn(&Object) -> Option<&Resource<T>>) -> Resource<T> {
    let loaded = Loader::new()
        .with_default_namespace("")
        .load_str("doc.yaml", text)
        .unwrap();
    pick(&loaded.documents()[0].object).unwrap().clone()
}

#[test]
fn serde_yaml_reads_and_writes_the_same_values_as_the_loader() {
    let vs = loaded(VIRTUAL_SERVICE, |o| match o {
        Object::VirtualService(vs) => Some(vs),
        _ => None,
    });
    let via_serde_yaml: Resource<VirtualService> = serde_yaml::from_str(VIRTUAL_SERVICE).unwrap();
    assert_eq!(via_serde_yaml, vs);
    let written = serde_yaml::to_string(&vs).unwrap();
    assert_eq!(
        serde_yaml::from_str::<Resource<VirtualService>>(&written).unwrap(),
        vs
    );

    let dr = loaded(DESTINATION_RULE, |o| match o {
        Object::DestinationRule(dr) => Some(dr),
        _ => None,
    });
    let via_serde_yaml: Resource<DestinationRule> = serde_yaml::from_str(DESTINATION_RULE).unwrap();
    assert_eq!(via_serde_yaml, dr);
}

#[test]
fn serde_json_reads_and_writes_the_same_values_as_the_loader() {
    let vs = loaded(VIRTUAL_SERVICE, |o| match o {
        Object::VirtualService(vs) => Some(vs),
        _ => None,
    });
    let json = serde_json::to_string(&vs).unwrap();
    assert_eq!(
        serde_json::from_str::<Resource<VirtualService>>(&json).unwrap(),
        vs
    );
    assert!(json.contains(r#""fixedDelay":"7s""#), "{json}");
    assert!(
        json.contains(r#""derivePort":"FROM_REQUEST_PORT""#),
        "{json}"
    );
}

#[test]
fn serde_yaml_rejects_what_the_loader_rejects() {
    let two_branches = VIRTUAL_SERVICE.replace("{prefix: /reviews}", "{prefix: /a, exact: /b}");
    assert!(serde_yaml::from_str::<Resource<VirtualService>>(&two_branches).is_err());
    let bad_enum = DESTINATION_RULE.replace("ISTIO_MUTUAL", "ISTIO_MUTAL");
    let err = serde_yaml::from_str::<Resource<DestinationRule>>(&bad_enum)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ISTIO_MUTUAL"), "{err}");
}
