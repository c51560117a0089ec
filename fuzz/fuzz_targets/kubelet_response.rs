//! The kubelet client's HTTP/1.1 response reader on arbitrary bytes, cut into reads of any
//! size: it must never panic, never hand on more body than the cap, and only hand on a body
//! with a 200.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_server_rs::kubelet::http1::read_response_for_fuzzing;

/// Small enough that the fuzzer reaches the cap often.
const LIMIT: usize = 4096;

fuzz_target!(|input: &[u8]| {
    let Some((&piece, bytes)) = input.split_first() else {
        return;
    };
    let whole = read_response_for_fuzzing(bytes, usize::from(piece), LIMIT);
    if let Ok((status, body, _)) = &whole {
        assert!(*body <= LIMIT, "a body over the cap was handed on");
        assert!(*status == 200 || *body == 0, "a non-200 body was handed on");
    }
    // Where the reads are cut must not change what is handed on (only whether bytes past the
    // body were seen, which decides reuse, may differ).
    let in_bytes = read_response_for_fuzzing(bytes, 1, LIMIT);
    let handed_on = |r: &Result<(u16, usize, bool), String>| r.as_ref().ok().map(|&(status, body, _)| (status, body));
    assert_eq!(
        handed_on(&whole),
        handed_on(&in_bytes),
        "the outcome depends on how reads are cut"
    );
});
