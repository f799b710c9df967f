#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Raises this process's soft limit on open files to its hard limit, as Go's runtime does for the
/// registries PullSketch sits beside. Every connection is a file, and a service manager's soft
/// limit is often 1,024 (systemd's default) while its hard limit allows far more: a node with
/// many clients — Quay's pods each keep a pool of connections — would stop accepting at the soft
/// limit.
func raiseOpenFileLimit(logger: Logger) {
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    let soft = limit.rlim_cur
    limit.rlim_cur = limit.rlim_max
    if setrlimit(resource, &limit) == 0 {
        logger.info("open file limit raised to the hard limit", metadata: ["from": "\(soft)", "to": "\(limit.rlim_max)"])
    } else {
        logger.warning("could not raise the open file limit", metadata: ["soft": "\(soft)", "hard": "\(limit.rlim_max)", "errno": "\(errno)"])
    }
}
