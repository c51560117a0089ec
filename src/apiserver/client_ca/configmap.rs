//! The ConfigMap `kube-system/extension-apiserver-authentication` as a source of trust: read
//! once, then watched. Its CA keys hold PEM; its list keys hold JSON arrays of strings, as the
//! kube-apiserver writes them. See the parent module for how its parts combine with flags.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use hyper::header::HeaderName;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::watch;

use super::{header_names, RequestHeaderConfig, Trust, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE};
use crate::apiserver::client_cert::{CaBundle, CaError};

/// Why the ConfigMap could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("getting configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}")]
    Get(#[source] kube::Error),
    #[error("key {key} of configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} is not a JSON list of strings")]
    List {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("key {key} of configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}")]
    Ca {
        key: &'static str,
        #[source]
        source: CaError,
    },
    #[error("invalid header name {name:?} in key {key} of configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}")]
    HeaderName { key: &'static str, name: String },
}

/// What the ConfigMap provides (either part may be absent).
#[derive(Debug, Clone, Default)]
pub(super) struct ClusterParts {
    pub(super) client_ca: Option<CaBundle>,
    pub(super) request_header: Option<RequestHeaderConfig>,
}

pub(super) async fn lookup(api: &kube::Api<ConfigMap>) -> Result<ClusterParts, LookupError> {
    match api.get_opt(CONFIGMAP_NAME).await.map_err(LookupError::Get)? {
        Some(cm) => parse(cm.data.unwrap_or_default()),
        None => Ok(ClusterParts::default()),
    }
}

const KEY_CLIENT_CA: &str = "client-ca-file";
const KEY_RH_CA: &str = "requestheader-client-ca-file";

pub(super) fn parse(data: BTreeMap<String, String>) -> Result<ClusterParts, LookupError> {
    let origin = |key: &str| format!("configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} key {key}");
    let ca = |key: &'static str| -> Result<Option<CaBundle>, LookupError> {
        match data.get(key).filter(|v| !v.trim().is_empty()) {
            Some(pem) => CaBundle::from_pem(pem.as_bytes(), origin(key))
                .map(Some)
                .map_err(|source| LookupError::Ca { key, source }),
            None => Ok(None),
        }
    };
    let list = |key: &'static str| -> Result<Vec<String>, LookupError> {
        match data.get(key).filter(|v| !v.is_empty()) {
            Some(json) => serde_json::from_str::<Option<Vec<String>>>(json)
                .map(Option::unwrap_or_default)
                .map_err(|source| LookupError::List { key, source }),
            None => Ok(Vec::new()),
        }
    };
    let headers = |key: &'static str| -> Result<Vec<HeaderName>, LookupError> {
        header_names(&list(key)?).map_err(|name| LookupError::HeaderName { key, name })
    };
    let request_header = match ca(KEY_RH_CA)? {
        Some(ca) => Some(RequestHeaderConfig {
            ca,
            allowed_names: list("requestheader-allowed-names")?,
            username_headers: headers("requestheader-username-headers")?,
            uid_headers: headers("requestheader-uid-headers")?,
            group_headers: headers("requestheader-group-headers")?,
            extra_header_prefixes: list("requestheader-extra-headers-prefix")?
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
        }),
        None => None,
    };
    Ok(ClusterParts {
        client_ca: ca(KEY_CLIENT_CA)?,
        request_header,
    })
}

/// Flag-given parts win; the ConfigMap fills in the rest.
pub(super) fn merge(fixed: &Trust, cluster: &ClusterParts, generation: u64) -> Trust {
    Trust {
        generation,
        client_ca: fixed.client_ca.clone().or_else(|| cluster.client_ca.clone()),
        request_header: fixed.request_header.clone().or_else(|| cluster.request_header.clone()),
    }
}

pub(super) fn warn_missing(trust: &Trust) {
    if trust.client_ca.is_none() {
        tracing::warn!("no {KEY_CLIENT_CA} in configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} nor --client-ca-file: client certificate authentication is off");
    }
    if trust.request_header.is_none() {
        tracing::warn!("no {KEY_RH_CA} in configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} nor --requestheader-client-ca-file: front-proxy (request-header) authentication is off");
    }
}

/// Watches the ConfigMap and publishes every change of content.
pub(super) async fn follow(api: kube::Api<ConfigMap>, fixed: Trust, tx: watch::Sender<Arc<Trust>>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut seen_in_relist = false;
    let mut failing = false;
    while let Some(event) = events.next().await {
        let found = match event {
            Ok(event) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("watching configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} resumed");
                }
                match event {
                    Event::Init => {
                        seen_in_relist = false;
                        continue;
                    }
                    Event::InitApply(cm) => {
                        seen_in_relist = true;
                        Some(cm)
                    }
                    Event::InitDone if seen_in_relist => continue,
                    Event::InitDone | Event::Delete(_) => None,
                    Event::Apply(cm) => Some(cm),
                }
            }
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %crate::apiserver::error_chain(&error),
                        "watching configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} failed; keeping the CAs last read");
                }
                continue;
            }
        };
        let parts = match found.map(|cm| parse(cm.data.unwrap_or_default())).transpose() {
            Ok(parts) => parts.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %crate::apiserver::error_chain(&error),
                    "ignoring an unreadable change of configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}; keeping the CAs last read");
                continue;
            }
        };
        publish(&tx, &fixed, &parts);
    }
}

pub(super) fn publish(tx: &watch::Sender<Arc<Trust>>, fixed: &Trust, parts: &ClusterParts) {
    tx.send_if_modified(|current| {
        let next = merge(fixed, parts, current.generation + 1);
        if next.same_content(current) {
            return false;
        }
        tracing::info!(
            client_ca = next.client_ca.is_some(),
            request_header = next.request_header.is_some(),
            "authentication CAs changed in configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}"
        );
        *current = Arc::new(next);
        true
    });
}
