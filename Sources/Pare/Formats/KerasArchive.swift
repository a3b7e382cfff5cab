import Foundation
import Glibc
import HDF5
import ZIPFoundation

/// Keras 3's `.keras` archive: a zip of `metadata.json`, `config.json` and `model.weights.h5`
/// (entries stored, not compressed). Weights up to `inMemoryWeightsLimit` are opened from memory;
/// larger stored ones are copied to a temporary file (unlinked once libhdf5 has it open) and read from
/// there tensor by tensor like any HDF5 file, so a large archive costs disk, not memory.
public enum KerasArchive {
    static let configName = "config.json"
    static let metadataName = "metadata.json"
    public static let weightsName = "model.weights.h5"
    /// Deflate cannot expand data more than about 1032:1; anything claiming more is a zip bomb.
    static let maxDeflateRatio: UInt64 = 1032
    /// The in-memory limit for an archive's weights: the interpreter's resident-weights limit.
    public static var inMemoryWeightsLimit: Int { min(Interpreter.residentWeightLimit, MemoryBudget.limit / 4) }

    public static func looksLikeZip(_ head: Data) -> Bool {
        head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06])
    }

    // MARK: Reading

    /// Reads an archive; `inMemoryLimit` chooses between memory and a temporary file for its weights.
    public static func read(path: String, inMemoryLimit: Int = inMemoryWeightsLimit) throws -> Model {
        let (archive, entries) = try members(path: path)
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
        let label = path + ": " + weightsName
        var model = Model(format: .kerasArchive, kind: .fullModel, sourcePath: path, layers: [])
        model.config = config
        model.source.originalConfigText = configText
        model.source.kerasMetadataText = metadataText
        if let m = metadataText.flatMap({ try? JSON.parse($0) }) {
            model.kerasVersion = m["keras_version"]?.stringValue
        }
        do {
            let file = try openWeights(archive, entries[weightsName]!, path: path, inMemoryLimit: inMemoryLimit)
            try Keras3Weights.read(root: try file.root(), config: config, label: label, into: &model)
        } catch let error as HDF5Error {
            throw PareError(file: path, object: weightsName, String(describing: error).replacingPrefix(label + ": "))
        }
        return model
    }

    /// The archive opened and its members checked before any is extracted: names, duplicates, types,
    /// sizes; no sharded or unexpected members; the config and the weights present.
    static func members(path: String) throws -> (archive: Archive, entries: [String: Entry]) {
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
        return (archive, entries)
    }

    /// The size `model.weights.h5` declares in the archive's directory (nil if absent or not a zip),
    /// read without inflating anything: the probe of an archive holds the weights in memory.
    public static func declaredWeightsSize(path: String) -> Int? {
        guard let archive = try? Archive(url: URL(fileURLWithPath: path), accessMode: .read),
            let entry = archive[weightsName]
        else { return nil }
        return Int(clamping: entry.uncompressedSize)
    }

    /// The archive's `model.weights.h5` opened by libhdf5, after the same checks as `read`.
    static func weightsFile(path: String, inMemoryLimit: Int = inMemoryWeightsLimit) throws -> HDF5File {
        let (archive, entries) = try members(path: path)
        return try openWeights(archive, entries[weightsName]!, path: path, inMemoryLimit: inMemoryLimit)
    }

    /// Whether a member is read through a temporary copy: stored (not deflated, so the copy is no larger
    /// than the archive) and over the in-memory limit. A deflated member is inflated into memory, within
    /// the memory budget.
    static func isStaged(_ entry: Entry, inMemoryLimit: Int) -> Bool {
        !entry.isCompressed && entry.uncompressedSize > UInt64(max(0, inMemoryLimit))
    }

    /// The weights member opened from memory, or from a temporary copy (`isStaged`).
    static func openWeights(_ archive: Archive, _ entry: Entry, path: String, inMemoryLimit: Int) throws -> HDF5File {
        let name = path + ": " + weightsName
        guard isStaged(entry, inMemoryLimit: inMemoryLimit) else {
            return try HDF5File.open(image: try extract(archive, entry, path: path), name: name)
        }
        // The probe's copy if there is one (the bytes it walked), else a new one.
        let probed = stagedLock.withLock { staged.removeValue(forKey: path) }
        if let probed, probed.owned, probed.identity != Identity(path: path, entry: entry) {
            removeCopy(probed.copy)
            throw PareError(file: path, object: entry.path, "the archive changed after it was checked: refused")
        }
        let copy = try probed ?? Staged(copy: temporaryCopy(archive, entry, path: path), identity: nil)
        // Once libhdf5 holds the copy open its name goes: nothing is left behind from here on.
        defer { if copy.owned { removeCopy(copy.copy) } }
        let file = try HDF5File.open(copy.copy, name: name)
        stagedLock.withLock { stagedReads += 1 }
        return file
    }

    /// A temporary copy of a large weights member: the probe of an input (a child, given the copy's
    /// path) and the command's read of it share one copy, unlinked as soon as the read opens it.
    private struct Staged {
        var copy: String
        /// Whether this process made the copy (and so removes it); a probe child reads its parent's.
        var owned = true
        /// What was copied, checked again when the copy is read.
        var identity: Identity?
    }

    /// An archive file as it was when a member was copied: the file (device, inode, size, modification
    /// time) and the member (CRC-32, size).
    private struct Identity: Equatable {
        var file: [Int]
        var member: [UInt64]

        init?(path: String, entry: Entry) {
            var status = stat()
            guard stat(path, &status) == 0 else { return nil }
            file = [
                Int(status.st_dev), Int(status.st_ino), Int(status.st_size), status.st_mtim.tv_sec,
                status.st_mtim.tv_nsec,
            ]
            member = [UInt64(entry.checksum), entry.uncompressedSize, entry.compressedSize]
        }
    }

    nonisolated(unsafe) private static var staged: [String: Staged] = [:]
    private static let stagedLock = NSLock()
    /// How many reads went through a temporary copy (for tests).
    nonisolated(unsafe) static var stagedReads = 0
    nonisolated(unsafe) private static var removesStagedAtExit = false
    /// Told of each temporary copy made (true) and removed (false): the CLI removes the ones left when
    /// it is interrupted.
    nonisolated(unsafe) public static var temporaryCopyObserver: ((_ path: String, _ exists: Bool) -> Void)?

    /// The path of the temporary copy of `path`'s weights, made now when the member `isStaged` (nil: the
    /// weights are read from memory). The whole archive is checked first, as `read` checks it.
    public static func stagedWeights(path: String, inMemoryLimit: Int = inMemoryWeightsLimit) throws -> String? {
        let (archive, entries) = try members(path: path)
        let entry = entries[weightsName]!
        guard isStaged(entry, inMemoryLimit: inMemoryLimit) else { return nil }
        let identity = Identity(path: path, entry: entry)
        if let existing = stagedLock.withLock({ staged[path] }), existing.identity == identity {
            return existing.copy
        }
        // Copied outside the lock: a large copy does not hold up other archives.
        let copy = try temporaryCopy(archive, entry, path: path)
        let replaced = stagedLock.withLock { () -> Staged? in
            defer { staged[path] = Staged(copy: copy, identity: identity) }
            if !removesStagedAtExit {
                // A copy staged for a read that never comes (the command ends first) goes at exit.
                removesStagedAtExit = true
                atexit { KerasArchive.discardAllStaged() }
            }
            return staged[path]
        }
        if let replaced, replaced.owned { removeCopy(replaced.copy) }
        return copy
    }

    /// Removes a copy `stagedWeights` made that will not be read (its probe failed).
    public static func discardStaged(path: String) {
        if let copy = stagedLock.withLock({ staged.removeValue(forKey: path) }), copy.owned { removeCopy(copy.copy) }
    }

    /// Removes every copy staged and not read (at exit, normal or after an error).
    public static func discardAllStaged() {
        let copies = stagedLock.withLock { () -> [Staged] in
            defer { staged = [:] }
            return Array(staged.values)
        }
        for copy in copies where copy.owned { removeCopy(copy.copy) }
    }

    /// Reads `path`'s weights from a copy its parent process staged (the probe child); never removes it.
    public static func adoptStaged(path: String, copy: String) {
        stagedLock.withLock { staged[path] = Staged(copy: copy, owned: false) }
    }

    private static func removeCopy(_ copy: String) {
        unlink(copy)
        if let descriptor = stagedLock.withLock({ copyLocks.removeValue(forKey: copy) }) { close(descriptor) }
        temporaryCopyObserver?(copy, false)
    }

    /// Per copy this process made and has not removed, a descriptor holding a shared `flock` on it:
    /// the kernel drops the lock when the process dies however it dies, so a free lock marks a leftover.
    nonisolated(unsafe) private static var copyLocks: [String: Int32] = [:]

    /// Removes copies that a killed run left in `directory`: names of exactly the form
    /// `pare-weights-<pid>-<6 characters>`, regular files (not followed through a link) owned by this
    /// user, not an input of this command, whose pid no longer exists and whose lock is free. A live
    /// run's copy keeps its lock, even when its pid looks dead from here (another pid namespace
    /// sharing TMPDIR); the lock is taken on the open file, so the check and the removal see one file.
    static func removeStaleCopies(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix("pare-weights-") {
            let parts = name.dropFirst("pare-weights-".count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1].utf8.count == 6, let pid = Int32(parts[0]), pid > 0 else { continue }
            let path = directory + "/" + name
            guard !InputFile.isProtected(path), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var status = stat()
            guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_uid == getuid(),
                flock(descriptor, LOCK_EX | LOCK_NB) == 0
            else { continue }
            // Still the file that was checked (not replaced under the name meanwhile).
            var named = stat()
            if lstat(path, &named) == 0, named.st_dev == status.st_dev, named.st_ino == status.st_ino { unlink(path) }
        }
    }

    /// Copies a member into a new temporary file, checking its size and CRC-32 on the way; on any
    /// error the file is removed.
    static func temporaryCopy(_ archive: Archive, _ entry: Entry, path: String) throws -> String {
        let declared = entry.uncompressedSize
        let directory = FileManager.default.temporaryDirectory.path
        // First: a killed run's leftover may be what fills the space checked next.
        removeStaleCopies(in: directory)
        var space = statvfs()
        if statvfs(directory, &space) == 0 {
            let (free, overflow) = UInt64(space.f_bavail).multipliedReportingOverflow(by: UInt64(space.f_frsize))
            if !overflow, free < declared {
                throw PareError(
                    file: path, object: entry.path,
                    "needs \(declared) bytes of temporary space in \(directory) (TMPDIR); \(free) are free")
            }
        }
        // The writer's pid in the name and a lock held until the copy is removed let a later run remove
        // a copy whose writer was killed (SIGKILL runs no cleanup).
        var template = Array((directory + "/pare-weights-\(getpid())-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw PareError(
                file: path, object: entry.path,
                "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        }
        let copy = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // Not inherited by the probe child. Shared, as libhdf5 takes a shared lock of its own when it opens
        // the copy read-only; a cleaner's exclusive request fails while either is held. Closed by removeCopy.
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        flock(descriptor, LOCK_SH)
        stagedLock.withLock { copyLocks[copy] = descriptor }
        temporaryCopyObserver?(copy, true)
        var written: UInt64 = 0
        do {
            let crc = try archive.extract(entry, skipCRC32: false) { chunk in
                guard written + UInt64(chunk.count) <= declared else {
                    throw PareError(
                        file: path, object: entry.path, "holds more bytes than its declared size \(declared)")
                }
                try chunk.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else {
                            throw PareError(
                                file: path, object: entry.path,
                                "cannot be copied to \(directory): \(String(cString: strerror(errno)))")
                        }
                        offset += n
                    }
                }
                written += UInt64(chunk.count)
            }
            guard crc == entry.checksum else {
                throw PareError(file: path, object: entry.path, "CRC-32 mismatch: the archive member is corrupt")
            }
            guard written == declared else {
                throw PareError(
                    file: path, object: entry.path, "holds \(written) bytes, its header declares \(declared)")
            }
        } catch {
            removeCopy(copy)
            if let error = error as? PareError { throw error }
            throw PareError(file: path, object: entry.path, "cannot be read: \(error)")
        }
        return copy
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
            AtomicFile.temporaryObserver?(weightsPath, true)
            defer {
                unlink(weightsPath)
                AtomicFile.temporaryObserver?(weightsPath, false)
            }
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
