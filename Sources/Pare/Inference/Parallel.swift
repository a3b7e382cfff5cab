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

    /// Calls `body` on disjoint ranges covering `0..<count`, in parallel when the work is large enough.
    static func chunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        precondition(configured)
        let parts = min(workers, max(1, count / max(1, minimumPerChunk)))
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
