import Foundation
import HDF5
import ZIPFoundation

/// Keras 3's `.keras` archive: a zip of `metadata.json`, `config.json` and `model.weights.h5`
/// (entries stored, not compressed). The weights are opened from memory; nothing is extracted to disk.
public enum KerasArchive {
    static let configName = "config.json"
    static let metadataName = "metadata.json"
    public static let weightsName = "model.weights.h5"
    /// Deflate cannot expand data more than about 1032:1; anything claiming more is a zip bomb.
    static let maxDeflateRatio: UInt64 = 1032

    public static func looksLikeZip(_ head: Data) -> Bool {
        head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06])
    }

    // MARK: Reading

    public static func read(path: String) throws -> Model {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw PareError(file: path, "not a readable zip archive (\(error))")
        }
        try ZipHeaders.verify(path)
        let archiveSize = UInt64(
            (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0)
        var entries: [String: Entry] = [:]
        for entry in archive {
            let name = entry.path
            try checkName(name, path: path)
            guard entries[name] == nil else {
                throw PareError(file: path, object: name, "appears twice in the archive")
            }
            guard entry.type == .file else {
                throw PareError(
                    file: path, object: name,
                    "is a \(entry.type == .directory ? "directory" : "symbolic link"); a .keras archive holds "
                        + "files only"
                )
            }
            try checkSize(entry, archiveSize: archiveSize, path: path)
            entries[name] = entry
        }
        if entries["model.weights.json"] != nil {
            throw PareError(file: path, object: "model.weights.json", "sharded Keras weights are not supported")
        }
        let unexpected = entries.keys.filter { ![configName, metadataName, weightsName].contains($0) }.sorted()
        guard unexpected.isEmpty else {
            throw PareError(
                file: path, object: unexpected[0],
                "unexpected archive member (a .keras archive Pare reads holds \(configName), \(metadataName) "
                    + "and \(weightsName) only)"
            )
        }
        for required in [configName, weightsName] where entries[required] == nil {
            throw PareError(file: path, object: required, "missing from the archive")
        }
        let configBytes = try extract(archive, entries[configName]!, path: path)
        guard let configText = String(bytes: configBytes, encoding: .utf8) else {
            throw PareError(file: path, object: configName, "is not UTF-8 text")
        }
        let config: JSON
        do { config = try JSON.parse(configText) } catch {
            throw PareError(file: path, object: configName, "does not parse: \(error)")
        }
        var metadataText: String?
        if let entry = entries[metadataName] {
            let bytes = try extract(archive, entry, path: path)
            guard let text = String(bytes: bytes, encoding: .utf8), (try? JSON.parse(text))?.objectValue != nil else {
                throw PareError(file: path, object: metadataName, "is not a JSON object")
            }
            metadataText = text
        }
        let image = try extract(archive, entries[weightsName]!, path: path)
        let label = path + ": " + weightsName
        var model = Model(format: .kerasArchive, kind: .fullModel, sourcePath: path, layers: [])
        model.config = config
        model.source.originalConfigText = configText
        model.source.kerasMetadataText = metadataText
        if let m = metadataText.flatMap({ try? JSON.parse($0) }) {
            model.kerasVersion = m["keras_version"]?.stringValue
        }
        do {
            let file = try HDF5File.open(image: image, name: label)
            try Keras3Weights.read(root: try file.root(), config: config, label: label, into: &model)
        } catch let error as HDF5Error {
            throw PareError(file: path, object: weightsName, String(describing: error).replacingPrefix(label + ": "))
        }
        return model
    }

    /// The size `model.weights.h5` declares in the archive's directory (nil if absent or not a zip),
    /// read without inflating anything: the probe of an archive holds the weights in memory.
    public static func declaredWeightsSize(path: String) -> Int? {
        guard let archive = try? Archive(url: URL(fileURLWithPath: path), accessMode: .read),
            let entry = archive[weightsName]
        else { return nil }
        return Int(clamping: entry.uncompressedSize)
    }

    /// The archive's `model.weights.h5` bytes, after the same checks as `read` (nil if absent).
    static func weightsImage(path: String) throws -> [UInt8]? {
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
            throw PareError(file: path, "not a readable zip archive (\(error))")
        }
        let archiveSize = UInt64(
            (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0)
        try ZipHeaders.verify(path)
        guard let entry = archive[weightsName], entry.type == .file else { return nil }
        try checkName(entry.path, path: path)
        try checkSize(entry, archiveSize: archiveSize, path: path)
        return try extract(archive, entry, path: path)
    }

    /// A member may not declare more than deflate can expand its stored bytes to (a zip bomb).
    static func checkSize(_ entry: Entry, archiveSize: UInt64, path: String) throws {
        let ratio = entry.isCompressed ? maxDeflateRatio : 1
        let (limit, overflow) = entry.compressedSize.multipliedReportingOverflow(by: ratio)
        guard entry.compressedSize <= archiveSize, !overflow, entry.uncompressedSize <= limit &+ 1024 else {
            throw PareError(
                file: path, object: entry.path,
                "declares \(entry.uncompressedSize) bytes from \(entry.compressedSize) stored bytes in a "
                    + "\(archiveSize)-byte archive: refusing a likely zip bomb"
            )
        }
    }

    static func checkName(_ name: String, path: String) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.hasPrefix("/") || name.contains("\\") || name.contains("\0") || parts.contains("..")
            || (name.count >= 2 && name.dropFirst().first == ":")
        {
            throw PareError(file: path, object: name, "archive member with an absolute path or '..': refused")
        }
    }

    /// An entry's bytes, at most its declared size, with its CRC checked.
    static func extract(_ archive: Archive, _ entry: Entry, path: String) throws -> [UInt8] {
        let declared = Int(clamping: entry.uncompressedSize)
        try MemoryBudget.require(declared, for: "this archive member", file: path, object: entry.path)
        var bytes = [UInt8]()
        bytes.reserveCapacity(min(declared, 1 << 30))
        do {
            let crc = try archive.extract(entry, skipCRC32: false) { chunk in
                guard bytes.count + chunk.count <= declared else {
                    throw PareError(
                        file: path, object: entry.path, "holds more bytes than its declared size \(declared)")
                }
                bytes.append(contentsOf: chunk)
            }
            guard crc == entry.checksum else {
                throw PareError(file: path, object: entry.path, "CRC-32 mismatch: the archive member is corrupt")
            }
        } catch let error as PareError {
            throw error
        } catch {
            throw PareError(file: path, object: entry.path, "cannot be read: \(error)")
        }
        guard bytes.count == declared else {
            throw PareError(
                file: path, object: entry.path, "holds \(bytes.count) bytes, its header declares \(declared)")
        }
        return bytes
    }

    // MARK: Writing

    /// Writes `model` as a `.keras` archive, atomically. The architecture must be a Keras 3 config.
    public static func write(_ model: Model, to path: String, options: KerasLegacyH5.WriteOptions = .init()) throws {
        guard let config = model.config else {
            throw PareError(
                file: model.sourcePath,
                .needsArchitecture(operation: "writing a .keras archive", plainTensors: false, keras3Weights: false))
        }
        guard Keras3Layout.isKeras3Config(config) else {
            throw PareError(
                file: model.sourcePath, object: "model_config",
                "is a Keras 2 / tf.keras config, which Keras 3 cannot rebuild from a .keras archive as it "
                    + "stands: upgrade it first (`pare convert` to .keras upgrades and verifies), or write legacy .h5"
            )
        }
        let current = Keras3Layout.configTextForWriting(model) ?? config.serialized()
        let currentConfig = (try? JSON.parse(current)) ?? config
        let archiveConfig = Keras3Layout.archiveConfig(currentConfig)
        let configText = archiveConfig == currentConfig ? current : archiveConfig.serialized()
        guard archiveConfig.nestingDepth <= JSON.maxNestingDepth else {
            throw PareError(
                file: model.sourcePath, object: configName,
                "would nest \(archiveConfig.nestingDepth) levels deep (Keras 3's form of nested models is deeper "
                    + "than Keras 2's), more than the \(JSON.maxNestingDepth) Pare reads: nothing written")
        }
        let metadata =
            model.source.kerasMetadataText
            ?? JSON.object([
                ("keras_version", .string(model.kerasVersion ?? "3")), ("date_saved", .string(dateSaved())),
            ]).serialized()
        try AtomicFile.write(to: path) { temporary in
            let weightsPath = temporary + ".weights.h5"
            defer { unlink(weightsPath) }
            let file = try HDF5File.create(weightsPath)
            do {
                try Keras3Weights.write(model, into: try file.root(), options: options)
                try file.close()
            } catch {
                try? file.close()
                throw error
            }
            do {
                let archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create)
                for (name, text) in [(metadataName, metadata), (configName, configText)] {
                    let data = Data(text.utf8)
                    try archive.addEntry(
                        with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none
                    ) { position, size in
                        data.subdata(in: Int(position)..<Int(position) + size)
                    }
                }
                try archive.addEntry(
                    with: weightsName, fileURL: URL(fileURLWithPath: weightsPath), compressionMethod: .none)
            } catch let error as PareError {
                throw error
            } catch {
                throw PareError(file: path, "cannot write the archive: \(error)")
            }
        }
    }

    private static func dateSaved() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        return f.string(from: Date())
    }
}
