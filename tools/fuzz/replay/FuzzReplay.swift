import Foundation

/// A harness's entry: libFuzzer when built with -DFUZZING -sanitize=fuzzer, else a replay of the
/// files named on the command line.
public enum FuzzMain {
    public static func run(_ body: @escaping ([UInt8]) -> Void) {
        #if FUZZING
            FuzzDriver.run(body)
        #else
            FuzzReplay.run(body)
        #endif
    }
}

/// The harnesses without libFuzzer: runs every file named on the command line (directories are
/// walked) through the harness, so a corpus or a crash reproducer can be replayed by any build.
public enum FuzzReplay {
    public static func run(_ body: ([UInt8]) -> Void) {
        var files: [String] = []
        for arg in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("replay: \(arg): no such file\n".utf8))
                exit(2)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: arg)) ?? []
                files += names.sorted().map { arg + "/" + $0 }
            } else {
                files.append(arg)
            }
        }
        for file in files {
            body([UInt8](FileManager.default.contents(atPath: file) ?? Data()))
        }
        print("replayed \(files.count) inputs without a crash")
    }
}

#if FUZZING
    import FuzzerDriver

    nonisolated(unsafe) private var harness: (([UInt8]) -> Void)?

    /// libFuzzer's own entry point, which its driver refers to; it runs the same harness.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        harness?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }

    /// Starts libFuzzer (linked by -sanitize=fuzzer) on `body`.
    public enum FuzzDriver {
        public static func run(_ body: @escaping ([UInt8]) -> Void) -> Never {
            harness = body
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) }
            exit(status)
        }
    }
#endif
