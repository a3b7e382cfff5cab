import Foundation

/// A zip names each member twice: in the central directory at the end, which ZIPFoundation reads,
/// and in a local header before the data. Readers that trust one or the other see different
/// archives (Python's zipfile, which Keras uses, refuses a name that differs), so every member's
/// local header must agree with its directory entry: name, method and, unless a data descriptor
/// follows the data, sizes and CRC.
enum ZipHeaders {
    static func verify(_ path: String) throws {
        func fail(_ problem: String) -> PareError { PareError(file: path, problem) }
        let file = try BoundedFile(path)
        let size = file.size
        let read = file.read
        func le(_ b: [UInt8], _ at: Int, _ width: Int) -> Int {
            (0..<width).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) }
        }
        // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
        let tailLength = min(size, 65_557)
        let tail = try read(size - tailLength, tailLength)
        guard
            let eocd = stride(from: tail.count - 22, through: 0, by: -1).first(where: {
                tail[$0] == 0x50 && tail[$0 + 1] == 0x4B && tail[$0 + 2] == 5 && tail[$0 + 3] == 6
            })
        else { throw fail("not a zip archive (no end of central directory)") }
        var count = le(tail, eocd + 10, 2)
        var directoryOffset = le(tail, eocd + 16, 4)
        if count == 0xFFFF || directoryOffset == 0xFFFF_FFFF {
            // Zip64: the locator just before the end record points at the zip64 end record.
            let locatorAt = size - tailLength + eocd - 20
            let locator = try read(locatorAt, 20)
            guard le(locator, 0, 4) == 0x0706_4B50 else { throw fail("zip64 locator missing") }
            let record = try read(le(locator, 8, 8), 56)
            guard le(record, 0, 4) == 0x0606_4B50 else { throw fail("zip64 end record missing") }
            count = le(record, 32, 8)
            directoryOffset = le(record, 48, 8)
        }
        guard count <= 1 << 16 else { throw fail("\(count) archive members: a .keras archive holds three") }
        var at = directoryOffset
        for _ in 0..<count {
            let entry = try read(at, 46)
            guard le(entry, 0, 4) == 0x0201_4B50 else { throw fail("central directory entry malformed") }
            let nameLength = le(entry, 28, 2)
            let extraLength = le(entry, 30, 2)
            let commentLength = le(entry, 32, 2)
            let name = try read(at + 46, nameLength)
            let extra = try read(at + 46 + nameLength, extraLength)
            var compressed = le(entry, 20, 4)
            var uncompressed = le(entry, 24, 4)
            var local = le(entry, 42, 4)
            // Zip64 extended information: the fields that are 0xFFFFFFFF, in this order.
            var e = 0
            while e + 4 <= extra.count {
                let id = le(extra, e, 2)
                let length = le(extra, e + 2, 2)
                if id == 1 {
                    var f = e + 4
                    // Only the fields whose 32-bit value is 0xFFFFFFFF are present, in this order.
                    for field in [0, 1, 2] where f + 8 <= e + 4 + length {
                        let value = le(extra, f, 8)
                        switch field {
                        case 0 where uncompressed == 0xFFFF_FFFF: uncompressed = value
                        case 1 where compressed == 0xFFFF_FFFF: compressed = value
                        case 2 where local == 0xFFFF_FFFF: local = value
                        default: continue
                        }
                        f += 8
                    }
                }
                e += 4 + length
            }
            let header = try read(local, 30)
            let shownName = String(decoding: name, as: UTF8.self)
            guard le(header, 0, 4) == 0x0403_4B50 else {
                throw PareError(file: path, object: shownName, "its local header is missing")
            }
            guard try read(local + 30, le(header, 26, 2)) == name else {
                throw PareError(file: path, object: shownName, "its local header names another file: a forged archive")
            }
            guard le(header, 8, 2) == le(entry, 10, 2) else {
                throw PareError(file: path, object: shownName, "its local header gives another compression method")
            }
            let hasDescriptor = le(header, 6, 2) & 0x8 != 0
            if !hasDescriptor {
                var localCompressed = le(header, 18, 4)
                var localUncompressed = le(header, 22, 4)
                if localCompressed == 0xFFFF_FFFF || localUncompressed == 0xFFFF_FFFF {
                    let localExtra = try read(local + 30 + le(header, 26, 2), le(header, 28, 2))
                    if localExtra.count >= 20, le(localExtra, 0, 2) == 1 {
                        localUncompressed = le(localExtra, 4, 8)
                        localCompressed = le(localExtra, 12, 8)
                    }
                }
                guard localCompressed == compressed, localUncompressed == uncompressed,
                    le(header, 14, 4) == le(entry, 16, 4)
                else {
                    throw PareError(
                        file: path, object: shownName, "its local header gives other sizes or CRC than the directory")
                }
            }
            at += 46 + nameLength + extraLength + commentLength
        }
    }
}
