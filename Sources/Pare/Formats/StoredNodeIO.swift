import HDF5

/// Reads and writes groups and datasets kept verbatim (optimizer state, unknown extras).
enum StoredNodeIO {
    static func attributes(of object: HDF5Object, except excluded: Set<String> = []) throws -> [(
        String, AttributeValue
    )] {
        try object.attributeNames().filter { !excluded.contains($0) }.map { ($0, try object.attribute($0)) }
    }

    /// A dataset's tensor, read when first needed. `legacyKeras`: a 2-byte opaque dataset without a
    /// `dtype` attribute is bfloat16, as Keras 3's legacy .h5 writer stores ml_dtypes' bfloat16 (h5py
    /// turns the numpy void type into an opaque one and Keras adds no attribute there).
    static func tensor(of dataset: HDF5Dataset, legacyKeras: Bool = false) throws -> Tensor {
        let type = try dataset.elementType()
        let shape = try dataset.shape()
        var tag = dataset.hasAttribute("dtype") ? try dataset.attribute("dtype").singleString : nil
        if legacyKeras, tag == nil, case .opaque(2, "") = type { tag = "bfloat16" }
        guard let dtype = DType(hdf5: type, dtypeAttribute: tag) else {
            throw PareError(
                file: dataset.file.path, object: dataset.path,
                "element type \(type.name) is not one Pare reads (a 2-byte opaque type is read as bfloat16 only "
                    + "with the attribute dtype=\"bfloat16\", as Keras 3 writes it)"
            )
        }
        let byteCount = try dataset.checkedByteCount()
        return Tensor(
            dtype: dtype, shape: shape,
            allow: {
                try MemoryBudget.require(
                    byteCount, for: "its data (shape \(shape), \(dtype))", file: dataset.file.path,
                    object: dataset.path)
            },
            fill: { buffer in
                do { try dataset.read(into: buffer) } catch { throw PareError.from(error, file: dataset.file.path) }
            },
            map: { body in
                do {
                    return try dataset.withMappedBytes(body) != nil
                } catch let error as HDF5Error { throw PareError.from(error, file: dataset.file.path) }
            })
    }

    static func read(_ group: HDF5Group, name: String, skipping skipped: Set<String> = [], legacyKeras: Bool = false)
        throws -> StoredNode
    {
        var guardian = WalkGuard()
        return try read(group, name: name, skipping: skipped, legacyKeras: legacyKeras, guardian: &guardian)
    }

    /// A group linked from two places would be copied twice (and a chain of such links doubles at
    /// every level), so it is refused, as is a cycle.
    private static func read(
        _ group: HDF5Group, name: String, skipping skipped: Set<String>, legacyKeras: Bool,
        guardian: inout WalkGuard
    ) throws -> StoredNode {
        if case .again(let first) = try guardian.enter(group) {
            throw PareError(
                file: group.file.path, object: group.path,
                "is the same group as \(first) (hard-linked twice); Pare copies each group once")
        }
        defer { guardian.leave(group) }
        var children: [StoredNode] = []
        for link in try group.children() where !skipped.contains(link.name) {
            let (child, kind) = (link.name, link.kind)
            switch kind {
            case .group:
                children.append(
                    try read(
                        try group.group(child), name: child, skipping: [], legacyKeras: legacyKeras,
                        guardian: &guardian))
            case .dataset:
                let dataset = try group.dataset(child)
                children.append(
                    .dataset(
                        name: child, attributes: try attributes(of: dataset),
                        tensor: try tensor(of: dataset, legacyKeras: legacyKeras)))
            case .other:
                throw HDF5Error.unsupportedType(
                    file: group.file.path, object: group.path + "/" + child,
                    detail: "link that is neither a group nor a dataset")
            }
        }
        return .group(name: name, attributes: try attributes(of: group), children: children)
    }

    /// Paths (relative to `group`) of every dataset below it.
    static func datasetPaths(in group: HDF5Group) throws -> [String] {
        var guardian = WalkGuard()
        var paths: [String] = []
        func visit(_ g: HDF5Group, prefix: String) throws {
            guard case .first = try guardian.enter(g) else { return }
            defer { guardian.leave(g) }
            for link in try g.children() {
                let (child, kind) = (link.name, link.kind)
                switch kind {
                case .dataset: paths.append(prefix + child)
                case .group: try visit(try g.group(child), prefix: prefix + child + "/")
                case .other: break
                }
            }
        }
        try visit(group, prefix: "")
        return paths
    }

    static func write(_ node: StoredNode, into parent: HDF5Group, options: DatasetOptions) throws {
        switch node {
        case .group(let name, let attrs, let children):
            let group = try parent.requireGroup(name)
            for (key, value) in attrs { try group.setAttribute(key, value) }
            for child in children { try write(child, into: group, options: options) }
        case .dataset(let name, let attrs, let tensor):
            let dataset = try parent.createDataset(
                name, type: tensor.dtype.hdf5, shape: tensor.shape,
                bytes: try tensor.bytes(), options: options)
            for (key, value) in attrs { try dataset.setAttribute(key, value) }
        }
    }
}
