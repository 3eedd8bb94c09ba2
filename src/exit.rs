//! The exit-code contract, the same for every command (listed in the README).

/// Everything observed, nothing denied by policy.
pub const CLEAN: u8 = 0;
/// A finding is denied by policy (whether or not everything could be observed).
pub const VIOLATION: u8 = 1;
/// Usage or configuration error: bad flags, unreadable or invalid config or inventory,
/// not a git repository.
pub const USAGE: u8 = 2;
/// Nothing denied, but something could not be observed (shallow clone, unresolved image).
pub const INCOMPLETE: u8 = 3;
/// `contains` only: deployed in some of the asked places (replicas or environments), not all.
pub const PARTIAL: u8 = 4;
