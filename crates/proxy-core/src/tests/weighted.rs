use super::{SVC_A, SVC_B, SVC_C, expect_forward, get};
use crate::action::{Destination, ForwardAction, RouteAction, pick_by_weight, pick_weighted};
use crate::decide;
use crate::error::InvalidAction;
use crate::rt::SequenceRandom;

fn cluster_for(action: &RouteAction, random: u64) -> String {
    let d = expect_forward(decide(
        action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([random]),
    ));
    d.cluster.to_string()
}

#[test]
fn selection_is_random_modulo_total_over_entries_in_order() {
    let action =
        ForwardAction::new(vec![Destination::new(SVC_A, 1), Destination::new(SVC_B, 2)]).unwrap();
    assert!(action.is_weighted());
    assert_eq!(action.total_weight(), 3);
    let action = RouteAction::from(action);
    assert_eq!(cluster_for(&action, 0), SVC_A);
    assert_eq!(cluster_for(&action, 1), SVC_B);
    assert_eq!(cluster_for(&action, 5), SVC_B);
    assert_eq!(cluster_for(&action, u64::MAX), SVC_A); // u64::MAX % 3 == 0
}

#[test]
fn zero_weight_entries_are_dropped_but_the_route_stays_weighted() {
    let action = ForwardAction::new(vec![
        Destination::new(SVC_A, 0),
        Destination::new(SVC_B, 100),
        Destination::new(SVC_C, 0),
    ])
    .unwrap();
    assert!(action.is_weighted());
    let kept: Vec<_> = action
        .destinations()
        .iter()
        .map(|d| (d.cluster(), d.weight()))
        .collect();
    assert_eq!(kept, [(SVC_B, 100)]);
    let action = RouteAction::from(action);
    for r in [0, 99, 100, 12345] {
        assert_eq!(cluster_for(&action, r), SVC_B);
    }
}

#[test]
fn single_destination_is_a_plain_cluster_and_its_weight_is_ignored() {
    for weight in [0, 30, 100] {
        let action = ForwardAction::new(vec![Destination::new(SVC_A, weight)]).unwrap();
        assert!(!action.is_weighted());
        assert_eq!(cluster_for(&RouteAction::from(action), 7), SVC_A);
    }
}

#[test]
fn weights_need_not_sum_to_100() {
    // l4-005 style: 70/30 with a zero-weight entry.
    assert_eq!(pick_by_weight([70u32, 30, 0].into_iter(), 69), Some(0));
    assert_eq!(pick_by_weight([70u32, 30, 0].into_iter(), 70), Some(1));
    assert_eq!(pick_by_weight([70u32, 30, 0].into_iter(), 199), Some(1));
    assert_eq!(pick_by_weight([0u32, 0].into_iter(), 1), None);
    assert_eq!(pick_by_weight(std::iter::empty(), 1), None);
    let dests = [
        Destination::new("x", 5),
        Destination::new("y", 0),
        Destination::new("z", 5),
    ];
    assert_eq!(pick_weighted(&dests, 4), Some(0));
    assert_eq!(pick_weighted(&dests, 5), Some(2));
}

#[test]
fn no_destinations_or_zero_total_weight_is_rejected() {
    assert_eq!(
        ForwardAction::new(vec![]).unwrap_err(),
        InvalidAction::NoDestinations
    );
    assert_eq!(
        ForwardAction::new(vec![Destination::new(SVC_A, 0), Destination::new(SVC_B, 0)])
            .unwrap_err(),
        InvalidAction::ZeroTotalWeight
    );
}

#[test]
fn large_weights_do_not_overflow() {
    let action = RouteAction::from(
        ForwardAction::new(vec![
            Destination::new(SVC_A, u32::MAX),
            Destination::new(SVC_B, u32::MAX),
        ])
        .unwrap(),
    );
    assert_eq!(cluster_for(&action, u64::from(u32::MAX) - 1), SVC_A);
    assert_eq!(cluster_for(&action, u64::from(u32::MAX)), SVC_B);
}

#[test]
fn destination_index_reports_the_pick() {
    let action = RouteAction::from(
        ForwardAction::new(vec![Destination::new(SVC_A, 1), Destination::new(SVC_B, 1)]).unwrap(),
    );
    let d = expect_forward(decide(
        &action,
        &get("h", "/"),
        &mut SequenceRandom::new([1]),
    ));
    assert_eq!(d.destination_index, 1);
}
