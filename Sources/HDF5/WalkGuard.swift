/// Keeps a recursive walk of a file finite. Hard links can make a group its own descendant (a
/// crafted file once made the probe recurse until it had used 7 GB), or reach one group along many
/// paths; both are found by object identity, not by name.
public struct WalkGuard {
    private var ancestors: [HDF5ObjectIdentity: String] = [:]
    private var seen: [HDF5ObjectIdentity: String] = [:]

    public init() {}

    /// Groups nested deeper than this are refused: every walk recurses once per level, and a crafted
    /// file 5,000 levels deep exhausted the 8 MiB stack of a conversion (Keras files nest a few levels).
    public static let maxDepth = 1000

    public enum Visit {
        case first
        case again(firstPath: String)
    }

    /// Call before descending into `group`: throws if it is one of its own ancestors; says whether it
    /// was already visited along another path. Pair with `leave`.
    public mutating func enter(_ group: HDF5Group) throws -> Visit {
        let identity = try group.identity()
        if let ancestor = ancestors[identity] {
            throw HDF5Error.refused(
                file: group.file.path, object: group.path,
                reason: "links back to its ancestor \(ancestor): a cycle of hard links")
        }
        if let earlier = seen[identity] { return .again(firstPath: earlier) }
        guard ancestors.count < Self.maxDepth else {
            throw HDF5Error.refused(
                file: group.file.path, object: String(group.path.prefix(200)) + "…",
                reason: "groups nest more than \(Self.maxDepth) levels deep; Pare reads up to \(Self.maxDepth)")
        }
        ancestors[identity] = group.path
        seen[identity] = group.path
        return .first
    }

    public mutating func leave(_ group: HDF5Group) {
        if let identity = try? group.identity() { ancestors[identity] = nil }
    }
}
