/// Why a process will not start on the Redis or PostgreSQL it was pointed at. Unlike a
/// `ValidationError`, it is printed without the command's usage, which would suggest that the
/// arguments were wrong; the process exits with status 1.
struct StartupRefusal: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
