use http_body_util::BodyExt;

use super::*;

fn json(s: &Status) -> String {
    String::from_utf8(s.to_json()).unwrap()
}

#[test]
fn node_metrics_not_found_matches_upstream_bytes() {
    let s = Status::not_found("metrics.k8s.io", "nodemetrics", "node1");
    assert_eq!(
        json(&s),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodemetrics.metrics.k8s.io \"node1\" not found","reason":"NotFound","details":{"name":"node1","group":"metrics.k8s.io","kind":"nodemetrics"},"code":404}"#
    );
}

#[test]
fn core_not_found_omits_the_empty_group() {
    let s = Status::not_found("", "node", "n");
    assert_eq!(
        json(&s),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"node \"n\" not found","reason":"NotFound","details":{"name":"n","kind":"node"},"code":404}"#
    );
    let pod = Status::not_found("metrics.k8s.io", "podmetrics", "ns1/pod1");
    assert_eq!(pod.message, r#"podmetrics.metrics.k8s.io "ns1/pod1" not found"#);
}

#[test]
fn bad_request_has_no_details() {
    let s =
        Status::bad_request(r#""spec.x" is not a known field selector: only "metadata.name", "metadata.namespace""#);
    assert_eq!(
        json(&s),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\"spec.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"","reason":"BadRequest","code":400}"#
    );
}

#[test]
fn watch_is_method_not_allowed_with_group_and_kind() {
    let s = Status::method_not_supported("metrics.k8s.io", "nodes", "watch");
    assert_eq!(
        json(&s),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"watch is not supported on resources of kind \"nodes.metrics.k8s.io\"","reason":"MethodNotAllowed","details":{"group":"metrics.k8s.io","kind":"nodes"},"code":405}"#
    );
}

#[test]
fn generic_method_not_allowed_has_empty_details() {
    assert_eq!(
        json(&Status::method_not_allowed()),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server does not allow this method on the requested resource","reason":"MethodNotAllowed","details":{},"code":405}"#
    );
}

#[test]
fn not_acceptable_unauthorized_and_internal_error() {
    assert_eq!(
        json(&Status::not_acceptable(
            "only the following media types are accepted: application/json"
        )),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"only the following media types are accepted: application/json","reason":"NotAcceptable","code":406}"#
    );
    assert_eq!(
        json(&Status::unauthorized("Unauthorized")),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    assert_eq!(
        json(&Status::internal_error("failed getting node: boom")),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"failed getting node: boom","code":500}"#
    );
}

#[test]
fn forbidden_messages_follow_go() {
    let path = Status::forbidden("", "", "", r#"User "u" cannot get path "/metrics""#);
    assert_eq!(
        json(&path),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"u\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403}"#
    );
    let list = Status::forbidden("metrics.k8s.io", "nodes", "", "x");
    assert_eq!(list.message, "nodes.metrics.k8s.io is forbidden: x");
    let get = Status::forbidden("metrics.k8s.io", "pods", "p", "x");
    assert_eq!(get.message, r#"pods.metrics.k8s.io "p" is forbidden: x"#);
}

#[test]
fn details_omit_every_empty_field_and_keep_go_order() {
    let d = StatusDetails {
        name: "n".into(),
        uid: "u".into(),
        causes: vec![StatusCause {
            kind: "FieldValueInvalid".into(),
            field: "f".into(),
            ..Default::default()
        }],
        retry_after_seconds: 3,
        ..Default::default()
    };
    let s = Status::new(429, StatusReason::TooManyRequests, "slow down").with_details(d);
    assert_eq!(
        json(&s),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"slow down","reason":"TooManyRequests","details":{"name":"n","uid":"u","causes":[{"reason":"FieldValueInvalid","field":"f"}],"retryAfterSeconds":3},"code":429}"#
    );
}

#[test]
fn names_are_quoted_like_go_percent_q() {
    assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(go_quote("t\tn\n\x01\x7fé"), r#""t\tn\n\x01\x7fé""#);
}

#[tokio::test]
async fn response_carries_code_content_type_and_newline_terminated_body() {
    let s = Status::not_found("", "node", "n");
    let expected = [s.to_json(), b"\n".to_vec()].concat();
    let resp = s.into_response();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.as_ref(), expected.as_slice());
}
