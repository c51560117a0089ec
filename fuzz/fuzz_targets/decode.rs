//! The kubelet `/metrics/resource` decoder on arbitrary bytes: it must never panic, and what
//! it returns must keep the shape the store relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_server_rs::kubelet::{decode, Timestamp};

/// 2023-11-14T22:13:20Z, the request time stamped on samples without a timestamp.
const DEFAULT_TIME: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

fuzz_target!(|body: &[u8]| {
    match decode(body, DEFAULT_TIME) {
        Ok(batch) => {
            // Containers sorted by (namespace, pod, container), each once: the store merges
            // batches by walking them in order.
            for pair in batch.containers.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                assert!(
                    (&a.namespace, &a.pod, &a.container) < (&b.namespace, &b.pod, &b.container),
                    "containers out of order or repeated"
                );
            }
            // Deterministic: the same bytes decode the same way.
            assert_eq!(decode(body, DEFAULT_TIME).ok(), Some(batch));
        }
        Err(error) => {
            let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(
                error.line >= 1 && error.line <= lines,
                "error line {} of {lines}",
                error.line
            );
            // The message names the line and never panics to format.
            let _ = error.to_string();
        }
    }
});
