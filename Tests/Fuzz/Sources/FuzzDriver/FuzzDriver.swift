/// libFuzzer's entry point when the program has its own `main` (SwiftPM names every executable's).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzer(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Hands the command line to libFuzzer, which calls `test` with each input it makes.
public func runLibFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    _ = runFuzzer(&argc, &argv, test)
}
