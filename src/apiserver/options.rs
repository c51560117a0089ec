//! The flags of delegated authentication, delegated authorization and `--tls-cipher-suites`,
//! with upstream's names and defaults (spec §4.4), and their translation into
//! [`DelegationOptions`] and rustls cipher suites.
//!
//! pflag conventions hold: booleans as `--flag` or `--flag=true|false`, lists comma-separated
//! (repeating a flag appends; `--flag=` gives an empty list), durations in Go syntax. Flags are
//! only parsed and checked here; clients are made in `main`, the gate in
//! [`delegation`](super::delegation).
//!
//! [`ServerRunFlags`] holds the generic server's overload and shutdown flags (spec §4.4
//! "Generic"), translated into [`Limits`].

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{parse_go_duration, parse_go_duration_signed, SignedDuration};

use super::authn::AuthenticationOptions;
use super::authz::AuthorizationOptions;
use super::cipher_suites::{cipher_suites, CipherSuiteError};
use super::client_ca::{RequestHeaderFlags, TrustOptions};
use super::delegation::DelegationOptions;
use super::serve::Limits;

/// Flags for who may call this server and how TLS is negotiated.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct SecurityFlags {
    /// Kubeconfig of the Kubernetes API server used to create TokenReviews and to read the authentication ConfigMap (in-cluster configuration when empty; --kubeconfig is not used for this).
    #[arg(long, default_value = "")]
    pub authentication_kubeconfig: String,

    /// Do not read missing client-certificate and request-header settings from the ConfigMap kube-system/extension-apiserver-authentication.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub authentication_skip_lookup: bool,

    /// How long answers of the token review webhook are cached.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// Start even when the authentication ConfigMap cannot be read (requests may then be treated as anonymous until it can).
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub authentication_tolerate_lookup_failure: bool,

    /// CA bundle for client certificates: a certificate it signed authenticates as its CommonName, with its Organizations as groups.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,

    /// Client certificate CommonNames allowed to name the user in the --requestheader-username-headers headers. Empty allows any certificate signed by --requestheader-client-ca-file.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,

    /// CA bundle that front-proxy client certificates must chain to before the user named in request headers is trusted.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Request header prefixes that carry extra user attributes (X-Remote-Extra- is usual).
    #[arg(long, value_delimiter = ',', default_value = "x-remote-extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// Request headers that carry the user's groups (X-Remote-Group is usual).
    #[arg(long, value_delimiter = ',', default_value = "x-remote-group")]
    pub requestheader_group_headers: Vec<String>,

    /// Request headers that carry the user's UID (X-Remote-Uid is usual).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_uid_headers: Vec<String>,

    /// Request headers that carry the user name; the first one set wins (X-Remote-User is usual).
    #[arg(long, value_delimiter = ',', default_value = "x-remote-user")]
    pub requestheader_username_headers: Vec<String>,

    /// HTTP paths anyone may request without a SubjectAccessReview; a trailing * matches a prefix.
    #[arg(long, value_delimiter = ',', default_value = "/healthz,/readyz,/livez")]
    pub authorization_always_allow_paths: Vec<String>,

    /// Kubeconfig of the Kubernetes API server used to create SubjectAccessReviews (in-cluster configuration when empty; --kubeconfig is not used for this).
    #[arg(long, default_value = "")]
    pub authorization_kubeconfig: String,

    /// How long 'allowed' answers of the authorization webhook are cached.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long 'not allowed' answers of the authorization webhook are cached.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,

    /// Comma-separated TLS cipher suites, by their Go (IANA) names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256. Empty uses the defaults. CBC, RC4, 3DES and non-forward-secret suites are refused.
    #[arg(long, value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,
}

/// Drops the empty entries `--flag=` or `a,,b` leave, as pflag's CSV reading does not produce
/// them for an empty value.
fn list(values: &[String]) -> Vec<String> {
    values.iter().filter(|v| !v.is_empty()).cloned().collect()
}

impl SecurityFlags {
    /// The gate's options.
    pub fn delegation_options(&self) -> DelegationOptions {
        DelegationOptions {
            trust: TrustOptions {
                client_ca_file: self.client_ca_file.clone(),
                request_header: RequestHeaderFlags {
                    client_ca_file: self.requestheader_client_ca_file.clone(),
                    allowed_names: list(&self.requestheader_allowed_names),
                    username_headers: list(&self.requestheader_username_headers),
                    uid_headers: list(&self.requestheader_uid_headers),
                    group_headers: list(&self.requestheader_group_headers),
                    extra_headers_prefix: list(&self.requestheader_extra_headers_prefix),
                },
                skip_lookup: self.authentication_skip_lookup,
                tolerate_lookup_failure: self.authentication_tolerate_lookup_failure,
            },
            authentication: AuthenticationOptions {
                token_cache_ttl: self.authentication_token_webhook_cache_ttl,
                ..AuthenticationOptions::default()
            },
            authorization: AuthorizationOptions {
                always_allow_paths: list(&self.authorization_always_allow_paths),
                allowed_ttl: self.authorization_webhook_cache_authorized_ttl,
                denied_ttl: self.authorization_webhook_cache_unauthorized_ttl,
                ..AuthorizationOptions::default()
            },
        }
    }

    /// `--tls-cipher-suites` as rustls suites (`None`: the defaults).
    pub fn cipher_suites(&self) -> Result<Option<Vec<rustls::SupportedCipherSuite>>, CipherSuiteError> {
        cipher_suites(&self.tls_cipher_suites)
    }
}

/// The generic server's flags for load and shutdown, with kube-apiserver's names, defaults and
/// help text.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServerRunFlags {
    /// This and --max-requests-inflight are summed to determine the server's total concurrency limit (which must be positive) if --enable-priority-and-fairness is true. Otherwise, this flag limits the maximum number of mutating requests in flight, or a zero value disables the limit completely.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub max_mutating_requests_inflight: i64,

    /// This and --max-mutating-requests-inflight are summed to determine the server's total concurrency limit (which must be positive) if --enable-priority-and-fairness is true. Otherwise, this flag limits the maximum number of non-mutating requests in flight, or a zero value disables the limit completely.
    #[arg(long, default_value_t = 400, allow_negative_numbers = true)]
    pub max_requests_inflight: i64,

    /// If true, replace the max-in-flight handler with an enhanced one that queues and dispatches with priority and fairness. Accepted for compatibility only: as in upstream metrics-server, which never applies it, the max-in-flight limits are used.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_priority_and_fairness: bool,

    /// Time to delay the termination. During that time the server keeps serving requests normally. The endpoints /healthz and /livez will return success, but /readyz immediately returns failure. Graceful termination starts after this delay has elapsed. This can be used to allow load balancer to stop sending traffic to this server.
    #[arg(long, default_value = "0s", value_parser = parse_go_duration_signed, allow_hyphen_values = true)]
    pub shutdown_delay_duration: SignedDuration,

    /// The limit that the server gives to clients for the maximum number of streams in an HTTP/2 connection. Zero means to use golang's default.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub http2_max_streams_per_connection: i64,
}

/// Go's default for HTTP/2 streams per connection (`http2.Server.MaxConcurrentStreams`).
const GO_HTTP2_MAX_STREAMS: u32 = 250;

impl ServerRunFlags {
    /// Upstream's checks (`ServerRunOptions.Validate`, `SecureServingOptions.Validate`).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.max_requests_inflight < 0 {
            errors.push("--max-requests-inflight can not be negative value".to_owned());
        }
        if self.max_mutating_requests_inflight < 0 {
            errors.push("--max-mutating-requests-inflight can not be negative value".to_owned());
        }
        if self.shutdown_delay_duration.negative && !self.shutdown_delay_duration.magnitude.is_zero() {
            errors.push("--shutdown-delay-duration can not be negative value".to_owned());
        }
        if self.http2_max_streams_per_connection < 0 {
            errors.push("--http2-max-streams-per-connection can not be negative value".to_owned());
        }
        errors
    }

    /// The server's limits: these flags over [`Limits::default`]. Values that
    /// [`ServerRunFlags::validate`] refuses count as 0 (no limit, no delay, Go's stream default).
    pub fn limits(&self) -> Limits {
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        let delay = if self.shutdown_delay_duration.negative {
            Duration::ZERO
        } else {
            self.shutdown_delay_duration.magnitude
        };
        let streams = u32::try_from(self.http2_max_streams_per_connection)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(GO_HTTP2_MAX_STREAMS);
        Limits {
            max_requests_inflight: count(self.max_requests_inflight),
            max_mutating_requests_inflight: count(self.max_mutating_requests_inflight),
            shutdown_delay: delay,
            http2_max_streams: streams,
            ..Limits::default()
        }
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
