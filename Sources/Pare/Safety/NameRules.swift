/// Names read from a file become HDF5 link names and paths when Pare writes: one that is empty,
/// holds `/` where a single name belongs, or starts at the root would write somewhere other than
/// where it was read from (or address another layer), so each is checked where it is read.
public enum NameRules {
    /// A layer, group or dataset name: one link, not a path.
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "an empty name" }
        if name.utf8.contains(0) { return "a name holding a NUL byte, which HDF5 would cut short" }
        if name.contains("/") { return "the name '\(name)' contains '/'" }
        if name == "." || name == ".." { return "the name '\(name)' is not a name" }
        return nil
    }

    /// A weight name, which may be a relative path (`dense/kernel:0`): no empty, `.` or `..`
    /// components and no leading `/`.
    public static func problem(withPath path: String) -> String? {
        if path.isEmpty { return "an empty name" }
        if path.utf8.contains(0) { return "a name holding a NUL byte, which HDF5 would cut short" }
        if path.hasPrefix("/") { return "the name '\(path)' starts at the file's root" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            return "the name '\(path)' has an empty, '.' or '..' component"
        }
        return nil
    }
}
