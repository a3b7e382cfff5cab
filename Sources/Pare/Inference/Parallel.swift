import COpenBLAS
import Dispatch
import Foundation

/// Splits work over the machine's cores. OpenBLAS runs single-threaded inside each part, so
/// GEMMs and the loops around them (im2col, pooling, activations) all use every core.
enum Parallel {
    static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
    private static let configured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Set on a thread while it runs a part of work that is already split over the cores (a tile of
    /// the batch, `Interpreter`'s tiled run): kernels called there run on that thread alone.
    private static let inlineKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Whether `chunks` runs its work on the calling thread alone.
    static var runsInline: Bool { pthread_getspecific(inlineKey) != nil }

    /// Runs `body` with every `chunks` inside it working on this thread alone.
    static func inline<T>(_ body: () throws -> T) rethrows -> T {
        let outer = pthread_getspecific(inlineKey)
        pthread_setspecific(inlineKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(inlineKey, outer) }
        return try body()
    }

    /// Sets OpenBLAS to one thread (once): call before running GEMMs on several threads outside `chunks`.
    static func configure() { precondition(configured) }

    /// Calls `body` on disjoint ranges covering `0..<count`, in parallel when the work is large enough.
    static func chunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        precondition(configured)
        let parts = runsInline ? 1 : min(workers, max(1, count / max(1, minimumPerChunk)))
        guard parts > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts
            let hi = count * (part + 1) / parts
            if hi > lo { body(lo..<hi) }
        }
    }
}
