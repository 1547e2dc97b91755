use std::time::Duration;

use super::{SVC_A, expect_forward, get};
use crate::rt::SequenceRandom;
use crate::{
    action::{ForwardAction, RouteAction},
    decide,
    retry::{ISTIO_DEFAULT_RETRY_ON, RetryPolicy, parse_retry_on},
};

#[test]
fn route_without_retries_gets_istio_default_policy() {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    let policy = d.retry_policy.expect("default policy");
    assert_eq!(policy.num_retries(), 2);
    assert_eq!(
        policy.retry_on(),
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert!(policy.retriable_status_codes().is_empty());
    assert!(policy.previous_hosts());
    assert_eq!(policy.host_selection_retry_max_attempts(), 5);
    assert_eq!(policy.per_try_timeout(), None);
    assert_eq!(policy.previous_priorities_update_frequency(), None);
    assert_eq!(policy.backoff_base_interval(), None);
    assert_eq!(*policy, RetryPolicy::istio_default());
}

#[test]
fn retry_on_integer_codes_move_to_status_codes() {
    let policy = RetryPolicy::from_istio(
        3,
        Some(Duration::from_secs(2)),
        "gateway-error,retriable-status-codes,503",
        false,
    )
    .unwrap();
    assert_eq!(policy.num_retries(), 3);
    assert_eq!(policy.retry_on(), "gateway-error,retriable-status-codes");
    assert_eq!(policy.retriable_status_codes(), [503]);
    assert!(policy.previous_hosts());
    assert_eq!(policy.host_selection_retry_max_attempts(), 5);
    assert_eq!(policy.per_try_timeout(), Some(Duration::from_secs(2)));
}

#[test]
fn retriable_status_codes_is_appended_when_codes_are_given() {
    let policy = RetryPolicy::from_istio(2, None, "5xx,404,503", false).unwrap();
    assert_eq!(policy.num_retries(), 2);
    assert_eq!(policy.retry_on(), "5xx,retriable-status-codes");
    assert_eq!(policy.retriable_status_codes(), [404, 503]);
    assert_eq!(policy.per_try_timeout(), None);
}

#[test]
fn codes_only_retry_on_keeps_pilots_leading_comma() {
    // pilot appends ",retriable-status-codes" to the (empty) joined token list.
    let policy = RetryPolicy::from_istio(1, None, "503", false).unwrap();
    assert_eq!(policy.retry_on(), ",retriable-status-codes");
    assert_eq!(
        policy.retry_on_conditions().collect::<Vec<_>>(),
        ["retriable-status-codes"]
    );
}

#[test]
fn missing_retry_on_uses_the_default_list() {
    let policy = RetryPolicy::from_istio(5, None, "", false).unwrap();
    assert_eq!(policy.num_retries(), 5);
    assert_eq!(policy.retry_on(), ISTIO_DEFAULT_RETRY_ON);
    assert!(policy.retriable_status_codes().is_empty());
    assert!(policy.previous_hosts());
}

#[test]
fn retry_remote_localities_and_ignore_previous_hosts_false() {
    let policy = RetryPolicy::from_istio(2, None, "", true)
        .unwrap()
        .with_previous_hosts(false);
    assert_eq!(policy.retry_on(), ISTIO_DEFAULT_RETRY_ON);
    assert!(!policy.previous_hosts());
    assert_eq!(policy.host_selection_retry_max_attempts(), 5);
    assert_eq!(policy.previous_priorities_update_frequency(), Some(2));
}

#[test]
fn consistent_hash_default_drops_only_the_host_predicate() {
    let policy = RetryPolicy::istio_default().with_previous_hosts(false);
    assert_eq!(policy.num_retries(), 2);
    assert_eq!(policy.retry_on(), ISTIO_DEFAULT_RETRY_ON);
    assert!(!policy.previous_hosts());
    assert_eq!(policy.host_selection_retry_max_attempts(), 5);
}

#[test]
fn zero_or_negative_attempts_mean_no_retry_policy() {
    assert!(RetryPolicy::from_istio(0, None, "5xx", false).is_none());
    assert!(RetryPolicy::from_istio(-1, None, "", false).is_none());
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_retry_policy(RetryPolicy::from_istio(0, None, "", false)),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert!(d.retry_policy.is_none());
}

#[test]
fn backoff_sets_the_base_interval() {
    let policy = RetryPolicy::from_istio(2, None, "", false)
        .unwrap()
        .with_backoff(Duration::from_millis(100));
    assert_eq!(
        policy.backoff_base_interval(),
        Some(Duration::from_millis(100))
    );
}

#[test]
fn parse_retry_on_follows_go_atoi_and_status_text() {
    assert_eq!(
        parse_retry_on("+503, -1 ,0404,306,599,1000,x9"),
        ("-1,306,599,1000,x9".to_owned(), vec![503, 404])
    );
    assert_eq!(parse_retry_on(",, ,"), (String::new(), vec![]));
    assert_eq!(
        parse_retry_on("99999999999999999999"),
        ("99999999999999999999".to_owned(), vec![])
    );
    assert_eq!(
        parse_retry_on("reset,425,451,511,226"),
        ("reset".to_owned(), vec![425, 451, 511, 226])
    );
}
