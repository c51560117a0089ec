use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Wrapper {
    #[command(flatten)]
    flags: SecurityFlags,
}

fn parse(args: &[&str]) -> SecurityFlags {
    let mut argv = vec!["metrics-server"];
    argv.extend_from_slice(args);
    Wrapper::try_parse_from(argv).unwrap().flags
}

#[test]
fn defaults_are_upstreams() {
    let flags = parse(&[]);
    assert_eq!(flags.authentication_kubeconfig, "");
    assert_eq!(flags.authorization_kubeconfig, "");
    assert!(!flags.authentication_skip_lookup && !flags.authentication_tolerate_lookup_failure);
    assert_eq!(flags.requestheader_username_headers, ["x-remote-user"]);
    assert_eq!(flags.requestheader_group_headers, ["x-remote-group"]);
    assert_eq!(flags.requestheader_extra_headers_prefix, ["x-remote-extra-"]);
    assert!(flags.requestheader_uid_headers.is_empty());
    assert!(flags.requestheader_allowed_names.is_empty());
    assert_eq!(
        flags.authorization_always_allow_paths,
        ["/healthz", "/readyz", "/livez"]
    );
    assert_eq!(flags.cipher_suites(), Ok(None));
    // The typed options' defaults are the flags' defaults.
    assert_eq!(flags.delegation_options(), DelegationOptions::default());
}

#[test]
fn upstream_style_values_parse() {
    let flags = parse(&[
        "--authentication-skip-lookup",
        "--authentication-tolerate-lookup-failure=false",
        "--authentication-token-webhook-cache-ttl=1m30s",
        "--authorization-webhook-cache-authorized-ttl=5s",
        "--authorization-webhook-cache-unauthorized-ttl=0",
        "--requestheader-allowed-names=front-proxy-client,aggregator",
        "--requestheader-username-headers=X-Remote-User,X-User",
        "--requestheader-uid-headers=",
        "--authorization-always-allow-paths=/metrics",
        "--authorization-always-allow-paths=/debug/*",
        "--client-ca-file=/etc/ca.crt",
        "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
    ]);
    let options = flags.delegation_options();
    assert!(options.trust.skip_lookup && !options.trust.tolerate_lookup_failure);
    assert_eq!(options.authentication.token_cache_ttl, Duration::from_secs(90));
    assert_eq!(options.authorization.allowed_ttl, Duration::from_secs(5));
    assert_eq!(options.authorization.denied_ttl, Duration::ZERO);
    assert_eq!(
        options.trust.request_header.allowed_names,
        ["front-proxy-client", "aggregator"]
    );
    assert_eq!(
        options.trust.request_header.username_headers,
        ["X-Remote-User", "X-User"]
    );
    assert!(options.trust.request_header.uid_headers.is_empty());
    // The chart's --authorization-always-allow-paths=/metrics replaces the default list.
    assert_eq!(options.authorization.always_allow_paths, ["/metrics", "/debug/*"]);
    assert_eq!(options.trust.client_ca_file, Some(PathBuf::from("/etc/ca.crt")));
    assert_eq!(flags.cipher_suites().unwrap().map(|s| s.len()), Some(2));
}

#[test]
fn bad_values_are_refused() {
    let parse_err = |args: &[&str]| {
        let mut argv = vec!["metrics-server"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).unwrap_err().to_string()
    };
    assert!(parse_err(&["--authentication-token-webhook-cache-ttl=10"]).contains("missing unit"));
    assert!(parse_err(&["--authentication-skip-lookup=maybe"]).contains("maybe"));
    let flags = parse(&["--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA"]);
    assert!(flags
        .cipher_suites()
        .unwrap_err()
        .to_string()
        .contains("TLS_RSA_WITH_RC4_128_SHA"));
}

#[derive(Debug, Parser)]
struct RunWrapper {
    #[command(flatten)]
    flags: ServerRunFlags,
}

fn parse_run(args: &[&str]) -> ServerRunFlags {
    let mut argv = vec!["metrics-server"];
    argv.extend_from_slice(args);
    RunWrapper::try_parse_from(argv).unwrap().flags
}

#[test]
fn server_run_defaults_are_upstreams_and_give_the_default_limits() {
    let flags = parse_run(&[]);
    assert_eq!(
        (flags.max_requests_inflight, flags.max_mutating_requests_inflight),
        (400, 200)
    );
    assert!(flags.enable_priority_and_fairness);
    assert_eq!(flags.http2_max_streams_per_connection, 0);
    assert!(flags.validate().is_empty());
    assert_eq!(flags.limits(), Limits::default());
}

#[test]
fn server_run_values_reach_the_limits() {
    let flags = parse_run(&[
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight",
        "7",
        "--enable-priority-and-fairness=false",
        "--shutdown-delay-duration=1m30s",
        "--http2-max-streams-per-connection=100",
    ]);
    assert!(!flags.enable_priority_and_fairness);
    let limits = flags.limits();
    assert_eq!(
        (limits.max_requests_inflight, limits.max_mutating_requests_inflight),
        (0, 7)
    );
    assert_eq!(limits.shutdown_delay, Duration::from_secs(90));
    assert_eq!(limits.http2_max_streams, 100);
}

#[test]
fn negative_server_run_values_get_upstreams_messages() {
    let flags = parse_run(&[
        "--max-requests-inflight=-1",
        "--max-mutating-requests-inflight",
        "-2",
        "--shutdown-delay-duration=-5s",
        "--http2-max-streams-per-connection=-1",
    ]);
    assert_eq!(
        flags.validate(),
        [
            "--max-requests-inflight can not be negative value",
            "--max-mutating-requests-inflight can not be negative value",
            "--shutdown-delay-duration can not be negative value",
            "--http2-max-streams-per-connection can not be negative value",
        ]
    );
}
