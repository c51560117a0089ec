//! The in-memory windowed store: for every node, the last two usable points of the node and
//! of each of its containers, and the usage (CPU rate, memory) they yield.
//!
//! The scraper applies one node's [`NodeBatch`] at a time; the store replaces everything it
//! held for that node (pods the kubelet no longer reports vanish), computes usage once per
//! apply, and serves it to the API until it is older than the staleness bound. It knows nothing
//! of the inventory: callers ask for a node or pod and forget nodes that leave.
//! PLACEHOLDER: being written.
