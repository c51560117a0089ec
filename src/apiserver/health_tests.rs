use std::sync::atomic::AtomicBool;

use http_body_util::BodyExt;

use super::*;

/// The application's checks as metrics-server registers them (server.go, health.go).
fn metrics_server_checks(storage_ready: Arc<AtomicBool>) -> HealthChecks {
    HealthChecks::builder()
        .readyz("metric-storage-ready", move || {
            if storage_ready.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("no metrics to serve".to_owned())
            }
        })
        .readyz("metric-informer-sync", || Ok(()))
        .livez("metric-collection-timely", || Ok(()))
        .all("metadata-informer-sync", || Ok(()))
        .build()
        .unwrap()
}

fn ready() -> HealthChecks {
    metrics_server_checks(Arc::new(AtomicBool::new(true)))
}

async fn get(checks: &HealthChecks, path_and_query: &str) -> (u16, String, Response) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut resp = checks.respond(path, query).expect("a health path");
    let body = std::mem::take(resp.body_mut()).collect().await.unwrap().to_bytes();
    (resp.status().as_u16(), String::from_utf8(body.to_vec()).unwrap(), resp)
}

const READYZ_VERBOSE: &str = "[+]ping ok
[+]log ok
[+]poststarthook/max-in-flight-filter ok
[+]poststarthook/storage-object-count-tracker-hook ok
[+]metric-storage-ready ok
[+]metric-informer-sync ok
[+]metadata-informer-sync ok
[+]shutdown ok
readyz check passed
";

const LIVEZ_VERBOSE: &str = "[+]ping ok
[+]log ok
[+]poststarthook/max-in-flight-filter ok
[+]poststarthook/storage-object-count-tracker-hook ok
[+]metric-collection-timely ok
[+]metadata-informer-sync ok
livez check passed
";

#[tokio::test]
async fn verbose_readyz_and_livez_match_the_upstream_e2e_bodies() {
    let checks = ready();
    assert_eq!(get(&checks, "/readyz?verbose").await.1, READYZ_VERBOSE);
    assert_eq!(get(&checks, "/livez?verbose").await.1, LIVEZ_VERBOSE);
    let healthz = get(&checks, "/healthz?verbose=1").await.1;
    assert_eq!(
        healthz,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n[+]metadata-informer-sync ok\n\
         healthz check passed\n"
    );
}

#[tokio::test]
async fn success_without_verbose_is_ok_with_plain_text_headers() {
    let (code, body, resp) = get(&ready(), "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(resp.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn a_failing_check_is_500_always_verbose_with_the_reason_withheld() {
    let checks = metrics_server_checks(Arc::new(AtomicBool::new(false)));
    let (code, body, resp) = get(&checks, "/readyz").await;
    assert_eq!(code, 500);
    assert_eq!(
        body,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n\
         [-]metric-storage-ready failed: no metrics to serve\n[+]metric-informer-sync ok\n\
         [+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check failed\n"
    );
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(resp.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    // livez does not run readiness checks.
    assert_eq!(get(&checks, "/livez").await.0, 200);
}

#[tokio::test]
async fn a_single_check_shows_its_real_reason() {
    let checks = metrics_server_checks(Arc::new(AtomicBool::new(false)));
    let (code, body, _) = get(&checks, "/readyz/metric-storage-ready").await;
    assert_eq!(
        (code, body.as_str()),
        (500, "internal server error: no metrics to serve\n")
    );
    let (code, body, _) = get(&checks, "/livez/poststarthook/max-in-flight-filter").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    assert!(checks.respond("/livez/metric-storage-ready", None).is_none());
    assert!(checks.respond("/readyz/", None).is_none());
    assert!(checks.respond("/readyzz", None).is_none());
}

#[tokio::test]
async fn excluded_checks_pass_and_unknown_exclusions_warn() {
    let checks = metrics_server_checks(Arc::new(AtomicBool::new(false)));
    let query = "/readyz?exclude=metric-storage-ready&exclude=nope&exclude=poststarthook%2Fmax-in-flight-filter&exclude=also+no";
    let (code, body, _) = get(&checks, query).await;
    assert_eq!(code, 200);
    assert_eq!(body, "ok");
    let (_, body, _) = get(&checks, &format!("{query}&verbose")).await;
    assert_eq!(
        body,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter excluded: ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n\
         [+]metric-storage-ready excluded: ok\n[+]metric-informer-sync ok\n\
         [+]metadata-informer-sync ok\n[+]shutdown ok\n\
         warn: some health checks cannot be excluded: no matches for \"also no\",\"nope\"\n\
         readyz check passed\n"
    );
}

#[tokio::test]
async fn shutdown_fails_readyz_only() {
    let checks = ready();
    assert!(!checks.is_shutting_down());
    checks.clone().begin_shutdown();
    assert!(checks.is_shutting_down());
    let (code, body, _) = get(&checks, "/readyz").await;
    assert_eq!(code, 500);
    assert!(
        body.ends_with("[-]shutdown failed: process is shutting down\nreadyz check failed\n"),
        "{body}"
    );
    let (code, body, _) = get(&checks, "/readyz/shutdown").await;
    assert_eq!(
        (code, body.as_str()),
        (500, "internal server error: process is shutting down\n")
    );
    assert_eq!(get(&checks, "/livez").await.0, 200);
    assert_eq!(get(&checks, "/healthz").await.0, 200);
}

#[test]
fn check_order_puts_generic_checks_around_the_applications() {
    let checks = ready();
    assert_eq!(
        checks.names(Endpoint::Healthz),
        [GENERIC.as_slice(), &["metadata-informer-sync"]].concat()
    );
    assert_eq!(checks.names(Endpoint::Readyz).last(), Some(&"shutdown"));
    assert_eq!(checks.listed_paths().len(), 3 + 5 + 6 + 8);
    assert!(checks
        .listed_paths()
        .contains(&"/readyz/metric-storage-ready".to_owned()));
}

#[test]
fn duplicate_and_path_breaking_names_are_rejected() {
    let dup = HealthChecks::builder()
        .livez("x", || Ok(()))
        .all("x", || Ok(()))
        .build();
    assert!(
        matches!(dup, Err(Error::Duplicate { endpoint: "livez", .. })),
        "{dup:?}"
    );
    let generic = HealthChecks::builder().readyz("shutdown", || Ok(())).build();
    assert!(matches!(generic, Err(Error::Duplicate { endpoint: "readyz", .. })));
    let bad = HealthChecks::builder().healthz("a?b", || Ok(())).build();
    assert!(matches!(bad, Err(Error::InvalidName { .. })));
}
