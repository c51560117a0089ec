//! Command-line flags, with upstream metrics-server's names, defaults and validation messages.
//!
//! Flags follow Go's pflag conventions so that upstream manifests work unchanged: `--flag=value`
//! or `--flag value`, booleans as `--flag` or `--flag=true|false`, lists comma-separated, and
//! durations in Go syntax (`15s`, `1m0s`, `1m30s`, `500ms`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Upstream's minimum `--metric-resolution` (options.go).
pub const MIN_METRIC_RESOLUTION: Duration = Duration::from_secs(10);

/// A drop-in, Rust replacement for the Kubernetes metrics-server.
#[derive(Debug, Clone, Parser)]
#[command(name = "metrics-server", version, about, long_about = None)]
pub struct Flags {
    /// The path to the kubeconfig used to connect to the Kubernetes API server and the Kubelets (defaults to in-cluster config)
    #[arg(long, default_value = "")]
    pub kubeconfig: String,

    /// The resolution at which metrics-server will retain metrics, must set value at least 10s.
    #[arg(long, default_value = "1m0s", value_parser = parse_go_duration)]
    pub metric_resolution: Duration,

    /// Do not connect to the apiserver or kubelets: run a simulated cluster on loopback and serve it (authentication off).
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sandbox: bool,

    /// Number of simulated nodes in --sandbox mode.
    #[arg(long, default_value_t = 3)]
    pub sandbox_nodes: usize,

    /// Number of simulated pods per node in --sandbox mode.
    #[arg(long, default_value_t = 4)]
    pub sandbox_pods_per_node: usize,

    /// DEPRECATED: Do not use any encryption, authorization, or authentication when communicating with the Kubelet. This is rarely the right option, since it leaves kubelet communication completely insecure. If you encounter auth errors, make sure you've enabled token webhook auth on the Kubelet, and if you're in a test cluster with self-signed Kubelet certificates, consider using kubelet-insecure-tls instead.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub deprecated_kubelet_completely_insecure: bool,

    /// Path to the CA to use to validate the Kubelet's serving certificates.
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,

    /// Path to a client cert file for TLS.
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,

    /// Path to a client key file for TLS.
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,

    /// Do not verify CA of serving certificates presented by Kubelets.  For testing purposes only.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub kubelet_insecure_tls: bool,

    /// The port to use to connect to Kubelets.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,

    /// The priority of node address types to use when determining which address to use to connect to a particular node
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    pub kubelet_preferred_address_types: Vec<String>,

    /// The maximum time to wait for each request to the Kubelet (an individual scrape).
    #[arg(long, default_value = "10s", value_parser = parse_go_duration_signed)]
    pub kubelet_request_timeout: SignedDuration,

    /// Use the port in the node status. Takes precedence over --kubelet-port flag.
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub kubelet_use_node_status_port: bool,

    /// Selector (label query) to filter on, not including uninitialized ones, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2).
    #[arg(short = 'l', long, default_value = "")]
    pub node_selector: String,

    /// The IP address on which to listen for the --secure-port port. If blank or an unspecified address (0.0.0.0 or ::), all interfaces and IP address families will be used.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: String,

    /// The directory where the TLS certs are located. If --tls-cert-file and --tls-private-key-file are provided, this flag will be ignored.
    #[arg(long, default_value = "apiserver.local.config/certificates")]
    pub cert_dir: PathBuf,

    /// If true, HTTP2 serving will be disabled [default=false]
    #[arg(long, default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_http2_serving: bool,

    /// The port on which to serve HTTPS with authentication and authorization. If 0, don't serve HTTPS at all.
    #[arg(long, default_value_t = 443)]
    pub secure_port: u16,

    /// File containing the default x509 Certificate for HTTPS. (CA cert, if any, concatenated after server cert).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,

    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,

    /// Minimum TLS version supported. Possible values: VersionTLS12, VersionTLS13
    #[arg(long, default_value = "VersionTLS12")]
    pub tls_min_version: String,

    /// Maximum number of scrapes in flight at once (beyond upstream, which has no bound).
    #[arg(long, default_value_t = 256)]
    pub kubelet_max_concurrent_scrapes: usize,

    /// Largest kubelet response body accepted, in bytes, after decompression (beyond upstream, which has no cap).
    #[arg(long, default_value_t = 64 << 20)]
    pub kubelet_max_response_bytes: usize,

    #[command(flatten)]
    pub security: crate::apiserver::SecurityFlags,

    #[command(flatten)]
    pub server_run: crate::apiserver::ServerRunFlags,

    /// number for the log level verbosity
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// A Go duration that may be zero or negative, so that validation can say what upstream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDuration {
    pub negative: bool,
    pub magnitude: Duration,
}

impl SignedDuration {
    /// The duration when it is strictly positive.
    pub fn positive(self) -> Option<Duration> {
        (!self.negative && !self.magnitude.is_zero()).then_some(self.magnitude)
    }
}

impl std::fmt::Display for SignedDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        let mut out = String::new();
        crate::api::go_duration::write_go_duration(self.magnitude, &mut out);
        write!(f, "{sign}{out}")
    }
}

impl Flags {
    /// Upstream's validation, in upstream's order; every message is returned so the caller can
    /// print the first, as upstream does, or all of them.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.sandbox {
            // The sandbox makes its own kubelets and credentials; kubelet TLS flags do not apply.
            errors.extend(self.validate_resolution());
            errors.extend(self.server_run.validate());
            return errors;
        }
        let ca = self.kubelet_certificate_authority.is_some();
        let cert = self.kubelet_client_certificate.is_some();
        let key = self.kubelet_client_key.is_some();
        let insecure = self.deprecated_kubelet_completely_insecure;
        if ca && self.kubelet_insecure_tls {
            errors.push("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls".into());
        }
        if key != cert {
            errors.push("need both --kubelet-client-key and --kubelet-client-certificate".into());
        }
        if key && insecure {
            errors.push("cannot use both --kubelet-client-key and --deprecated-kubelet-completely-insecure".into());
        }
        if cert && insecure {
            errors.push(
                "cannot use both --kubelet-client-certificate and --deprecated-kubelet-completely-insecure".into(),
            );
        }
        if self.kubelet_insecure_tls && insecure {
            errors.push("cannot use both --kubelet-insecure-tls and --deprecated-kubelet-completely-insecure".into());
        }
        if ca && insecure {
            errors.push(
                "cannot use both --kubelet-certificate-authority and --deprecated-kubelet-completely-insecure".into(),
            );
        }
        if self.kubelet_request_timeout.positive().is_none() {
            errors.push("kubelet-request-timeout should be positive".into());
        }
        errors.extend(self.validate_resolution());
        errors.extend(self.server_run.validate());
        errors
    }

    fn validate_resolution(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let resolution = self.metric_resolution;
        if resolution < MIN_METRIC_RESOLUTION {
            errors.push(format!(
                "metric-resolution should be a time duration at least 10s, but value {} provided",
                go_duration(resolution)
            ));
        }
        if let Some(timeout) = self.kubelet_request_timeout.positive() {
            if resolution * 9 / 10 < timeout {
                errors.push(format!(
                    "metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value {} kubelet-request-timeout value {} provided",
                    go_duration(resolution),
                    go_duration(timeout)
                ));
            }
        }
        errors
    }
}

fn go_duration(d: Duration) -> String {
    let mut out = String::new();
    crate::api::go_duration::write_go_duration(d, &mut out);
    out
}

/// Parses a non-negative Go duration (`time.ParseDuration` syntax).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let parsed = parse_go_duration_signed(text)?;
    if parsed.negative && !parsed.magnitude.is_zero() {
        return Err(format!("time: negative duration {text:?} not allowed here"));
    }
    Ok(parsed.magnitude)
}

/// Parses a Go duration: an optional sign, then one or more decimal numbers each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1h2m3.5s`; a bare `0` is allowed.
pub fn parse_go_duration_signed(text: &str) -> Result<SignedDuration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(SignedDuration {
            negative,
            magnitude: Duration::ZERO,
        });
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total_nanos += number * unit_nanos;
    }
    if !total_nanos.is_finite() || total_nanos > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(SignedDuration {
        negative,
        magnitude: Duration::from_nanos(total_nanos.round() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut argv = vec!["metrics-server"];
        argv.extend_from_slice(args);
        Flags::try_parse_from(argv).unwrap()
    }

    #[test]
    fn go_durations_parse_like_time_parse_duration() {
        assert_eq!(parse_go_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("15").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("5x").is_err());
        let neg = parse_go_duration_signed("-10s").unwrap();
        assert!(neg.negative && neg.positive().is_none());
    }

    #[test]
    fn defaults_are_upstreams() {
        let f = flags(&[]);
        assert_eq!(f.metric_resolution, Duration::from_secs(60));
        assert_eq!(f.kubelet_request_timeout.positive(), Some(Duration::from_secs(10)));
        assert_eq!(f.kubelet_port, 10250);
        assert_eq!(f.secure_port, 443);
        assert_eq!(
            f.kubelet_preferred_address_types,
            ["Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP"]
        );
        assert!(f.validate().is_empty());
    }

    #[test]
    fn upstream_manifest_args_parse() {
        let f = flags(&[
            "--cert-dir=/tmp",
            "--secure-port=10250",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--kubelet-use-node-status-port",
            "--metric-resolution=15s",
            "--kubelet-insecure-tls=true",
        ]);
        assert_eq!(
            f.kubelet_preferred_address_types,
            ["InternalIP", "ExternalIP", "Hostname"]
        );
        assert!(f.kubelet_use_node_status_port && f.kubelet_insecure_tls);
        assert_eq!(f.metric_resolution, Duration::from_secs(15));
    }

    #[test]
    fn resolution_below_ten_seconds_is_rejected_with_upstreams_message() {
        let f = flags(&["--metric-resolution=5s", "--kubelet-request-timeout=1s"]);
        assert_eq!(
            f.validate(),
            ["metric-resolution should be a time duration at least 10s, but value 5s provided"]
        );
    }

    #[test]
    fn timeout_must_fit_in_nine_tenths_of_the_resolution() {
        assert!(flags(&["--metric-resolution=10s", "--kubelet-request-timeout=9s"])
            .validate()
            .is_empty());
        assert_eq!(
            flags(&["--metric-resolution=10s", "--kubelet-request-timeout=10s"]).validate(),
            ["metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value 10s kubelet-request-timeout value 10s provided"]
        );
    }

    #[test]
    fn kubelet_option_conflicts_count_as_upstream_counts_them() {
        let count = |args: &[&str]| flags(args).validate().len();
        assert_eq!(
            count(&[
                "--kubelet-client-certificate=c",
                "--deprecated-kubelet-completely-insecure"
            ]),
            2
        );
        assert_eq!(
            count(&["--kubelet-client-key=k", "--deprecated-kubelet-completely-insecure"]),
            2
        );
        assert_eq!(
            count(&[
                "--kubelet-certificate-authority=ca",
                "--deprecated-kubelet-completely-insecure"
            ]),
            1
        );
        assert_eq!(
            count(&["--kubelet-insecure-tls", "--deprecated-kubelet-completely-insecure"]),
            1
        );
        assert_eq!(
            count(&["--kubelet-certificate-authority=ca", "--kubelet-insecure-tls"]),
            1
        );
        assert_eq!(count(&["--kubelet-request-timeout=0"]), 1);
        assert_eq!(count(&["--kubelet-request-timeout=-10s"]), 1);
    }
}
